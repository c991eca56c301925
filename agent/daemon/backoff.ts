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

/** The wait before attempt `failures + 1`, uniformly drawn from [0, min(cap, base·2^failures)]. */
export function backoffDelay(
  failures: number,
  policy = DEFAULT_BACKOFF,
  random = Math.random,
): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(failures, 30));
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
