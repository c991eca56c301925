// Counts long-lived streams that have not earned trust (not yet authenticated, or anonymous by
// design), per client bucket, per wider prefix and in all, so no one address and no crowd of them
// can hold more than a bounded share of the process. When every slot is taken, a newcomer from a
// less crowded prefix evicts the oldest stream of the most crowded one instead of being refused:
// filling the pool from a few prefixes then locks no one else out.
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
}

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
  #total = 0;

  constructor(
    readonly what: string,
    readonly perKeyMax: number,
    readonly totalMax: number,
    options: GateOptions = {},
  ) {
    this.#prefixOf = options.prefixOf ?? ((key) => key);
    this.#perPrefixMax = options.perPrefixMax ?? Number.POSITIVE_INFINITY;
    this.#evictableAfterMs = options.evictableAfterMs ?? 0;
  }

  get size(): number {
    return this.#total;
  }

  /**
   * Admits one stream for `key` or throws RATE_LIMITED; the result releases it, once. `evict`,
   * when given, lets a newcomer from a less crowded prefix take this stream's slot: the gate
   * releases the slot and calls it (the stream should then end).
   */
  admit(key: string, evict?: () => boolean | void): () => void {
    const held = this.#perKey.get(key) ?? 0;
    if (held >= this.perKeyMax) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many ${this.what} from ${key} (at most ${this.perKeyMax}); retry later`,
      );
    }
    const prefix = this.#prefixOf(key);
    const mine = this.#perPrefix.get(prefix)?.size ?? 0;
    if (mine >= this.#perPrefixMax) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many ${this.what} from ${prefix} (at most ${this.#perPrefixMax}); retry later`,
      );
    }
    if (this.#total >= this.totalMax && !this.#evictFor(prefix, mine)) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many ${this.what} on this controller (at most ${this.totalMax}); retry later`,
      );
    }
    const holder: Holder = { key, prefix, evict, since: performance.now() };
    this.#perKey.set(key, held + 1);
    let holders = this.#perPrefix.get(prefix);
    if (!holders) this.#perPrefix.set(prefix, holders = new Set());
    holders.add(holder);
    this.#total++;
    return () => this.#release(holder);
  }

  /** Frees a slot for a newcomer whose prefix holds `mine`: the most crowded prefix's oldest. */
  #evictFor(prefix: string, mine: number): boolean {
    let crowded: Set<Holder> | undefined;
    for (const holders of this.#perPrefix.values()) {
      if (!crowded || holders.size > crowded.size) crowded = holders;
    }
    // Only a strictly more crowded prefix gives way, so evicting never just trades places.
    if (!crowded || crowded.size <= mine + 1) return false;
    const youngest = performance.now() - this.#evictableAfterMs;
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

  #release(holder: Holder): void {
    const holders = this.#perPrefix.get(holder.prefix);
    if (!holders?.delete(holder)) return; // released already
    if (holders.size === 0) this.#perPrefix.delete(holder.prefix);
    this.#total--;
    const left = (this.#perKey.get(holder.key) ?? 1) - 1;
    if (left > 0) this.#perKey.set(holder.key, left);
    else this.#perKey.delete(holder.key);
  }
}
