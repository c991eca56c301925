// A sliding-window limit per key (the source address for anonymous attestation).

export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #hits = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(limit: number, windowMs: number, now: () => number = Date.now) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Records a hit; returns 0 when allowed, else the milliseconds until the next one is. */
  take(key: string): number {
    const now = this.#now();
    const recent = (this.#hits.get(key) ?? []).filter((t) => now - t < this.#windowMs);
    if (recent.length >= this.#limit) {
      this.#hits.set(key, recent);
      return recent[0] + this.#windowMs - now;
    }
    recent.push(now);
    this.#hits.set(key, recent);
    if (this.#hits.size > 10_000) this.#prune(now);
    return 0;
  }

  #prune(now: number): void {
    for (const [key, hits] of this.#hits) {
      if (hits.every((t) => now - t >= this.#windowMs)) this.#hits.delete(key);
    }
  }
}
