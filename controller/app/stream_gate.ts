// Counts long-lived streams that have not earned trust (not yet authenticated, or anonymous by
// design), per client bucket, per wider prefix and in all, so no one address and no crowd of them
// can hold more than a bounded share of the process. When every slot is taken, a newcomer from a
// less crowded prefix evicts the oldest stream of the most crowded one instead of being refused:
// filling the pool from a few prefixes then locks no one else out.
//
// A refusal says when to come back (details.retry_after_ms). Refused streams are given return
// times one after another, spaced by how fast the pool drains, so a fleet reconnecting at once
// (a controller restart) returns at the rate the process admits instead of guessing: with only
// its own backoff, a refused daemon counted each refusal as an outage and its jitter window grew
// with it, to tens of seconds, while the pool stood idle.
import { AegisError } from "../../shared/errors.ts";

export interface GateOptions {
  /** The wider block a key belongs to (IPv4 /24, IPv6 /48); none by default. */
  prefixOf?: (key: string) => string;
  /** Streams per prefix at most; unbounded by default. */
  perPrefixMax?: number;
  /**
   * A stream younger than this is never evicted. When a whole fleet reconnects at once (a
   * controller restart), newcomers evicting one another's fresh streams was a livelock: no
   * stream lived long enough to say Hello.
   */
  evictableAfterMs?: number;
  /**
   * Every slot frees within this (the stream's deadline to authenticate): the slowest the pool
   * can drain when full, and so the widest spacing of return times. 10 s by default.
   */
  slotDeadlineMs?: number;
  /** The clock, in ms (performance.now() by default; tests pass their own). */
  now?: () => number;
}

/** The furthest return time a refusal names: a reconnecting daemon waits at most 60 s anyway. */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Weight of each completed stream's hold time in the running mean. With hundreds of releases a
 * second while a fleet reconnects, the mean follows the controller's current pace within a
 * fraction of a second, and one slow Hello does not swing it.
 */
const HOLD_WEIGHT = 1 / 64;

interface Holder {
  key: string;
  prefix: string;
  /** Ends the stream to free its slot; false when it declines (it is authenticating). */
  evict?: () => boolean | void;
  since: number;
}

export class StreamGate {
  readonly #perKey = new Map<string, number>();
  /** Per prefix, its holders oldest first (a Set keeps insertion order). */
  readonly #perPrefix = new Map<string, Set<Holder>>();
  readonly #prefixOf: (key: string) => string;
  readonly #perPrefixMax: number;
  readonly #evictableAfterMs: number;
  readonly #slotDeadlineMs: number;
  readonly #now: () => number;
  #total = 0;
  /** Running mean of how long a completed stream held its slot, in ms; 0 until one did. */
  #meanHoldMs = 0;
  /** The return time given to the last refused stream (the gate's clock). */
  #lastReturnAt = 0;

  constructor(
    readonly what: string,
    readonly perKeyMax: number,
    readonly totalMax: number,
    options: GateOptions = {},
  ) {
    this.#prefixOf = options.prefixOf ?? ((key) => key);
    this.#perPrefixMax = options.perPrefixMax ?? Number.POSITIVE_INFINITY;
    this.#evictableAfterMs = options.evictableAfterMs ?? 0;
    this.#slotDeadlineMs = options.slotDeadlineMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.#total;
  }

  /**
   * Admits one stream for `key` or throws RATE_LIMITED; the result releases it, once, with
   * `completed` when the stream did what the slot was for (authenticated). `evict`,
   * when given, lets a newcomer from a less crowded prefix take this stream's slot: the gate
   * releases the slot and calls it (the stream should then end).
   */
  admit(key: string, evict?: () => boolean | void): (completed?: boolean) => void {
    const held = this.#perKey.get(key) ?? 0;
    if (held >= this.perKeyMax) {
      this.#refuse(`too many ${this.what} from ${key} (at most ${this.perKeyMax})`);
    }
    const prefix = this.#prefixOf(key);
    const mine = this.#perPrefix.get(prefix)?.size ?? 0;
    if (mine >= this.#perPrefixMax) {
      this.#refuse(`too many ${this.what} from ${prefix} (at most ${this.#perPrefixMax})`);
    }
    if (this.#total >= this.totalMax && !this.#evictFor(prefix, mine)) {
      this.#refuse(`too many ${this.what} on this controller (at most ${this.totalMax})`, true);
    }
    const holder: Holder = { key, prefix, evict, since: this.#now() };
    this.#perKey.set(key, held + 1);
    let holders = this.#perPrefix.get(prefix);
    if (!holders) this.#perPrefix.set(prefix, holders = new Set());
    holders.add(holder);
    this.#total++;
    return (completed = false) => this.#release(holder, completed);
  }

  /**
   * Throws RATE_LIMITED with a return time. A stream refused because the pool is full takes the
   * next turn in line: the last turn given plus the pool's drain interval (Little's law: slots
   * over the hold time). The hold time is the running mean over streams that completed (said a
   * valid Hello): streams that never do (a peer gone, one past its deadline) hold a slot for up
   * to the deadline, and counting them paced the whole line at about that slowest drain
   * (measured with 5,000 daemons: ~100 admitted a second, the controller mostly idle). Before
   * the first completion the interval is the tightest. So the estimate errs short: a stream back
   * too early costs one refusal more, one told to wait too long leaves the pool idle.
   *
   * The interval is never wider than the slowest drain (every slot freed by its deadline), and
   * the line never reaches past MAX_RETRY_AFTER_MS, the longest a daemon's own backoff would
   * wait: streams refused in bulk (by a peer that does not wait) can push the fleet no further.
   * A stream refused for its address's or prefix's share names no return time and takes no
   * turn: its own share frees at no pace the pool knows, so the daemon's growing backoff is the
   * right wait (a return time of "now" had the hosts of a crowded NAT retrying every second),
   * and one crowded address must not push everyone else back.
   */
  #refuse(why: string, poolFull = false): never {
    if (!poolFull) throw new AegisError("RATE_LIMITED", `${why}; retry later`);
    const retryAfterMs = this.#returnIn(true);
    throw new AegisError(
      "RATE_LIMITED",
      `${why}; retry in ${(retryAfterMs / 1000).toFixed(1)}s`,
      { details: { retry_after_ms: String(retryAfterMs) } },
    );
  }

  /** A turn in line for a stream that lost its slot (evicted for a newcomer), in ms from now. */
  nextTurnMs(): number {
    return this.#returnIn(true);
  }

  #returnIn(takesTurn: boolean): number {
    const now = this.#now();
    const intervalMs = Math.min(this.#slotDeadlineMs, Math.max(1, this.#meanHoldMs)) /
      this.totalMax;
    let returnAt = Math.max(this.#lastReturnAt, now);
    if (takesTurn) {
      returnAt = Math.min(now + MAX_RETRY_AFTER_MS, returnAt + intervalMs);
      this.#lastReturnAt = returnAt;
    }
    return Math.round(returnAt - now);
  }

  /** Frees a slot for a newcomer whose prefix holds `mine`: the most crowded prefix's oldest. */
  #evictFor(prefix: string, mine: number): boolean {
    let crowded: Set<Holder> | undefined;
    for (const holders of this.#perPrefix.values()) {
      if (!crowded || holders.size > crowded.size) crowded = holders;
    }
    // Only a strictly more crowded prefix gives way, so evicting never just trades places.
    if (!crowded || crowded.size <= mine + 1) return false;
    const youngest = this.#now() - this.#evictableAfterMs;
    for (const victim of crowded) {
      // Oldest first: once one is too young, so are all after it.
      if (victim.since > youngest) return false;
      if (!victim.evict || victim.prefix === prefix) continue;
      if (victim.evict() === false) continue;
      this.#release(victim);
      return true;
    }
    return false;
  }

  #release(holder: Holder, completed = false): void {
    const holders = this.#perPrefix.get(holder.prefix);
    if (!holders?.delete(holder)) return; // released already
    if (completed) {
      const heldMs = this.#now() - holder.since;
      this.#meanHoldMs = this.#meanHoldMs === 0
        ? heldMs
        : this.#meanHoldMs + (heldMs - this.#meanHoldMs) * HOLD_WEIGHT;
    }
    if (holders.size === 0) this.#perPrefix.delete(holder.prefix);
    this.#total--;
    const left = (this.#perKey.get(holder.key) ?? 1) - 1;
    if (left > 0) this.#perKey.set(holder.key, left);
    else this.#perKey.delete(holder.key);
  }
}
