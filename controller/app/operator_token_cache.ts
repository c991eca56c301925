// Operator tokens already verified, so a busy operator (a script, the UI) pays for the signature
// check once per token, not once per request. An entry lives until the token expires, and never
// longer than maxAgeMs: that bounds how long anything the cache cannot see (an external issuer
// dropping a key, a revocation another relay did not tell us about) goes unnoticed. Bounded in
// entries, least recently used out first. A revoked token id is refused from then on, cached or
// not, until the token would have expired anyway.
import type { OperatorClaims } from "../../shared/tokens/claims.ts";

export interface OperatorTokenCacheOptions {
  maxEntries?: number;
  maxAgeMs?: number;
}

interface Entry {
  claims: OperatorClaims;
  /** The token's id (its `jti`), by which it is revoked; "" when it has none. */
  jti: string;
  /** Epoch ms after which the entry is not used. */
  until: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;
const DEFAULT_MAX_AGE_MS = 60_000;

export class OperatorTokenCache {
  /** By token; a Map keeps insertion order, which get() refreshes, so the first key is the LRU. */
  readonly #entries = new Map<string, Entry>();
  /** Revoked token ids, with when their tokens expire (then they need no remembering). */
  readonly #revoked = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;

  constructor(options: OperatorTokenCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.#maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  /** The claims of a token verified before, if still good at `nowMs`. */
  get(token: string, nowMs: number): OperatorClaims | undefined {
    const entry = this.#entries.get(token);
    if (!entry) return undefined;
    this.#entries.delete(token);
    if (nowMs >= entry.until) return undefined;
    this.#entries.set(token, entry);
    return entry.claims;
  }

  /** Remembers a token just verified in full (a revoked one is not remembered). */
  set(token: string, claims: OperatorClaims, jti: string, nowMs: number): void {
    if (this.isRevoked(jti, nowMs)) return;
    const until = Math.min(claims.exp * 1000, nowMs + this.#maxAgeMs);
    if (until <= nowMs) return;
    // One object serves every request with this token: none of them may change it for the rest.
    Object.freeze(claims.tenants);
    Object.freeze(claims);
    this.#entries.delete(token);
    this.#entries.set(token, { claims, jti, until });
    while (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /**
   * The token with this id is revoked: dropped from the cache at once and refused by
   * isRevoked() until `expiresAtMs` (pass its exp; unknown, pass Infinity).
   */
  revoke(jti: string, expiresAtMs: number): void {
    this.#revoked.set(jti, expiresAtMs);
    for (const [token, entry] of this.#entries) {
      if (entry.jti === jti) this.#entries.delete(token);
    }
  }

  isRevoked(jti: string, nowMs: number): boolean {
    if (jti === "") return false;
    const until = this.#revoked.get(jti);
    if (until === undefined) return false;
    if (nowMs < until) return true;
    this.#revoked.delete(jti);
    return false;
  }

  /** Forgets every verified token (the trusted keys changed). */
  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
