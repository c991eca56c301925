// Full-jitter exponential backoff: a fleet that lost its controller spreads its return instead
// of arriving in the same second, and never gives up.
import type { AegisError } from "../../shared/errors.ts";

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 60_000 };

/** The host's policy from edge config; the cap never exceeds 60 s (a fleet must come back). */
export function backoffPolicy(edge: { reconnect_base_ms: number; reconnect_cap_secs: number }) {
  const capMs = Math.min(60_000, edge.reconnect_cap_secs * 1000);
  return { baseMs: Math.min(edge.reconnect_base_ms, capMs), capMs };
}

/**
 * The wait before attempt `failures + 1`, uniformly drawn from [0, ceiling]. The ceiling doubles
 * with each failure from base up to cap, and never exceeds how long this run of failures has
 * lasted (`failingForMs`, at least base). The count alone over-punishes the unlucky: a daemon
 * that drew short waits while its controller was away failed more often, and measured with 1,000
 * daemons, a 4 s outage left some facing waits of 32-60 s and the fleet took 23-47 s to return.
 * Bounded by the outage's age, a fleet is back within about as long as the controller was gone
 * (up to cap), and a daemon still makes ~2·ln(outage/base) attempts over it.
 */
export function backoffDelay(
  failures: number,
  policy = DEFAULT_BACKOFF,
  random = Math.random,
  failingForMs = Number.POSITIVE_INFINITY,
): number {
  const ceiling = Math.min(
    policy.capMs,
    policy.baseMs * 2 ** Math.min(failures, 30),
    Math.max(policy.baseMs, failingForMs),
  );
  return Math.round(random() * ceiling);
}

/**
 * The controller's word on when to come back after refusing a stream for lack of room
 * (RATE_LIMITED with details.retry_after_ms, as its admission gate sends), bounded by the cap;
 * undefined for any other failure, or a hint that is not a number.
 */
export function refusalRetryAfterMs(
  error: AegisError,
  policy = DEFAULT_BACKOFF,
): number | undefined {
  const text = error.code === "RATE_LIMITED" ? error.details.retry_after_ms : undefined;
  if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
  return Math.min(policy.capMs, Number(text));
}

/**
 * The wait after a refusal that named its return time: that time plus jitter. A refusal is an
 * answer, not an outage: the controller is up and lines the refused streams up at the rate it
 * admits them, so an outage's growing window (measured: a restarted controller's refused daemons
 * drew waits of tens of seconds while its admission pool stood idle) does not apply. The jitter
 * window is one base, so a return time of 0 can never make a tight loop, for the first three
 * refusals in a row (`refusals`, 1 for the first: the controller's estimate errs short, and a
 * turn or two more is normal), then doubles with each: a turn that keeps being refused means
 * the pool does not drain at the pace it measured (held by streams that never say Hello), and
 * the fleet then spreads out as for an outage instead of knocking once a second. Measured in
 * bench/herd_gate_model.ts: 15,000 daemons at 300 Hellos/s back in 53.6 s (floor 52 s) with
 * this, 62.6 s when the window doubled from the second refusal.
 */
export function refusalDelay(
  retryAfterMs: number,
  refusals = 1,
  policy = DEFAULT_BACKOFF,
  random = Math.random,
): number {
  const window = Math.min(
    policy.capMs,
    policy.baseMs * 2 ** Math.min(30, Math.max(0, refusals - 3)),
  );
  return Math.min(policy.capMs, retryAfterMs) + Math.round(random() * window);
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
