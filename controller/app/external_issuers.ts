// Tokens minted by an external identity provider (Keycloak and the like). A token is checked
// only against the issuer its `iss` names, with that issuer's audience and algorithms pinned;
// its JWKS is cached and fetched again when a token carries a `kid` we have not seen (the
// provider rotated its key), no more often than the issuer's cooldown.
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { TrustedIssuer } from "../auth_config.ts";
import type { Clock } from "./clock.ts";

/** A JWKS is a handful of keys; anything much larger is not one we want to parse. */
export const MAX_JWKS_BYTES = 64 * 1024;
const JWKS_FETCH_TIMEOUT_MS = 5_000;

interface Entry {
  config: TrustedIssuer;
  jwks: JWTVerifyGetKey;
}

export class ExternalIssuers {
  readonly #byIssuer = new Map<string, Entry>();

  constructor(issuers: readonly TrustedIssuer[]) {
    for (const config of issuers) {
      const jwks = createRemoteJWKSet(new URL(config.jwks_url), {
        cooldownDuration: config.jwks_cooldown_secs * 1000,
        cacheMaxAge: config.jwks_max_age_secs * 1000,
        timeoutDuration: JWKS_FETCH_TIMEOUT_MS,
        [customFetch]: boundedFetch,
      });
      this.#byIssuer.set(config.issuer, { config, jwks });
    }
  }

  get size(): number {
    return this.#byIssuer.size;
  }

  /** Whether the token claims to come from one of our external issuers (unverified). */
  claimsIssuer(token: string): boolean {
    return this.#entryFor(token) !== undefined;
  }

  /** The trusted issuer the token names (unverified: verify() checks it), or undefined. */
  issuerOf(token: string): TrustedIssuer | undefined {
    return this.#entryFor(token)?.config;
  }

  /**
   * Verifies a token from the issuer it names. Throws jose's errors (mapped by the caller) or
   * `UnknownIssuer` when no trusted issuer has that name.
   */
  async verify(token: string, clock: Clock, leewaySecs: number) {
    const entry = this.#entryFor(token);
    if (!entry) throw new UnknownIssuer();
    const { payload } = await jwtVerify(token, entry.jwks, {
      issuer: entry.config.issuer,
      audience: entry.config.audience,
      algorithms: [...entry.config.algorithms],
      requiredClaims: ["exp", "sub"],
      clockTolerance: leewaySecs,
      currentDate: clock(),
    });
    return payload;
  }

  #entryFor(token: string): Entry | undefined {
    let payload: JWTPayload;
    try {
      payload = decodeJwt(token);
    } catch {
      return undefined;
    }
    return typeof payload.iss === "string" ? this.#byIssuer.get(payload.iss) : undefined;
  }
}

export class UnknownIssuer extends Error {
  constructor() {
    super("the token's issuer is not trusted");
  }
}

/** fetch() for JWKS documents: the body is read up to MAX_JWKS_BYTES and refused beyond. */
async function boundedFetch(url: string, init: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  if (!response.body) return response;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > MAX_JWKS_BYTES) {
      throw new TypeError(`the JWKS at ${url} is larger than ${MAX_JWKS_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return new Response(new Blob(chunks as BlobPart[]), {
    status: response.status,
    headers: response.headers,
  });
}
