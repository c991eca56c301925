// Relay-to-relay credentials. Relays that share a database share the signing key, so a relay
// proves it is one by presenting a short-lived JWT signed with that key and addressed to the
// relay audience. Its own audience and `typ` keep it apart from every other token: a relay token
// is never accepted as an operator or node token, and those are never accepted here.
import { jwtVerify, SignJWT } from "jose";
import { createLocalJWKSet } from "jose";
import { AegisError } from "../../shared/errors.ts";
import type { SigningKey } from "./signing_key.ts";
import { type Clock, seconds, systemClock } from "./clock.ts";

export const RELAY_AUDIENCE = "aegis:relay";
const RELAY_TYP = "aegis-relay+jwt";
/** Long enough for one call to be set up; each call gets a fresh token. */
export const RELAY_TOKEN_TTL_SECS = 60;
/** Relays share one database but not one clock: a little skew is tolerated. */
const LEEWAY_SECS = 30;

export class RelayTokens {
  readonly #jwks: ReturnType<typeof createLocalJWKSet>;

  constructor(
    private readonly key: SigningKey,
    private readonly issuer: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.#jwks = createLocalJWKSet({ keys: [key.publicJwk] });
  }

  /** A token naming this relay, good for RELAY_TOKEN_TTL_SECS. */
  issue(relayId: string): Promise<string> {
    const iat = seconds(this.clock());
    return new SignJWT({ iss: this.issuer, aud: RELAY_AUDIENCE, sub: relayId, iat })
      .setProtectedHeader({ alg: "EdDSA", kid: this.key.kid, typ: RELAY_TYP })
      .setJti(crypto.randomUUID())
      .setExpirationTime(iat + RELAY_TOKEN_TTL_SECS)
      .sign(this.key.privateKey);
  }

  /** The calling relay's id, from an `authorization: Bearer` header value. */
  async verify(header: string | null): Promise<string> {
    const token = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (!token) throw new AegisError("UNAUTHENTICATED", "a relay peer call needs a relay token");
    try {
      const { payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.issuer,
        audience: RELAY_AUDIENCE,
        typ: RELAY_TYP,
        algorithms: ["EdDSA"],
        requiredClaims: ["sub", "exp", "iat"],
        clockTolerance: LEEWAY_SECS,
        currentDate: this.clock(),
      });
      return payload.sub!;
    } catch {
      throw new AegisError(
        "UNAUTHENTICATED",
        "the relay token is invalid, expired or not a relay token",
      );
    }
  }
}
