// A sliding-window limit per key (the client's address bucket for anonymous attestation).

export interface RateLimiterOptions {
  now?: () => number;
  /** Maps a caller's key to the bucket it counts against (e.g. an IPv6 address to its /64). */
  bucket?: (key: string) => string;
  /** Buckets kept at most; beyond it the least recently used go, so the map stays bounded. */
  maxKeys?: number;
}

export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #hits = new Map<string, number[]>();
  readonly #now: () => number;
  readonly #bucket: (key: string) => string;
  readonly #maxKeys: number;

  constructor(limit: number, windowMs: number, options: RateLimiterOptions | (() => number) = {}) {
    const opts = typeof options === "function" ? { now: options } : options;
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = opts.now ?? Date.now;
    this.#bucket = opts.bucket ?? ((key) => key);
    this.#maxKeys = opts.maxKeys ?? 100_000;
  }

  get size(): number {
    return this.#hits.size;
  }

  /** Records a hit; returns 0 when allowed, else the milliseconds until the next one is. */
  take(key: string): number {
    const bucket = this.#bucket(key);
    const now = this.#now();
    const recent = this.#hits.get(bucket) ?? [];
    // Hits are appended in time order, so the stale ones are a prefix: dropping it costs what
    // expired, not the whole window (a limit raised to thousands a minute stays cheap per take).
    let stale = 0;
    while (stale < recent.length && now - recent[stale] >= this.#windowMs) stale++;
    if (stale > 0) recent.splice(0, stale);
    // Re-inserting keeps the map in least-recently-used order for #evict.
    this.#hits.delete(bucket);
    this.#hits.set(bucket, recent);
    if (recent.length >= this.#limit) return recent[0] + this.#windowMs - now;
    recent.push(now);
    if (this.#hits.size > this.#maxKeys) this.#evict();
    return 0;
  }

  /**
   * Forgets the least recently used buckets (the Map's first keys: every take re-inserts its
   * bucket at the end), O(1) each. One forgotten while still live has used at most a window's
   * worth of hits, so forgetting it grants at most one more window's worth.
   */
  #evict(): void {
    for (const key of this.#hits.keys()) {
      if (this.#hits.size <= this.#maxKeys) break;
      this.#hits.delete(key);
    }
  }
}
