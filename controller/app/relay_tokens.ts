// Relay-to-relay credentials. Relays that share a database share the signing key, so a relay
// proves it is one by presenting a JWT signed with that key. A relay token is not a bearer pass to
// the peer service: it grants exactly one ForwardCall, to one named relay (its audience), for one
// call (call_id, node_id, and a SHA-256 of the tool, arguments and deadline), for 15 s. The
// serving relay spends the call id in the replay cache and runs the call only if the caller
// recorded it in tool_calls as running (see PeerCallService.authorize). Its own audience and
// `typ` keep it apart from every other token: a relay token is never accepted as an operator or
// node token, and those are never accepted here.
import { createLocalJWKSet, jwtVerify, SignJWT } from "jose";
import { AegisError } from "../../shared/errors.ts";
import { toBase64Url } from "../../shared/crypto/encoding.ts";
import type { SigningKey } from "./signing_key.ts";
import { type Clock, seconds, systemClock } from "./clock.ts";
import type { ForwardedCall } from "./peer_calls.ts";

/** Audiences are `aegis:relay:<relay id>`: a token is good at the one relay it names. */
export const RELAY_AUDIENCE = "aegis:relay";
const RELAY_TYP = "aegis-relay+jwt";
/** Long enough for one forward to be set up; each call gets a fresh token, spent on use. */
export const RELAY_TOKEN_TTL_SECS = 15;
/** Relays share one database but not one clock: a little skew is tolerated. */
export const RELAY_TOKEN_LEEWAY_SECS = 30;

/** What a verified relay token names. */
export interface RelayGrant {
  /** The relay that asked (the token's subject); it must have recorded the call. */
  caller: string;
  jti: string;
  /** When the token stops being accepted anywhere (expiry plus leeway). */
  usableUntil: Date;
}

export function relayAudience(relayId: string): string {
  return `${RELAY_AUDIENCE}:${relayId}`;
}

/** SHA-256 over what the node will be asked to do, so a token cannot carry another command. */
export async function callDigest(call: ForwardedCall): Promise<string> {
  const text = JSON.stringify([call.tool, call.argumentsJson, call.deadline.getTime()]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return toBase64Url(new Uint8Array(digest));
}

export class RelayTokens {
  readonly #jwks: ReturnType<typeof createLocalJWKSet>;

  constructor(
    private readonly key: SigningKey,
    private readonly issuer: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.#jwks = createLocalJWKSet({ keys: [key.publicJwk] });
  }

  /** A token from relay `from` for relay `to` to run `call` once, good for RELAY_TOKEN_TTL_SECS. */
  async issue(from: string, to: string, call: ForwardedCall): Promise<string> {
    const iat = seconds(this.clock());
    return await new SignJWT({
      iss: this.issuer,
      aud: relayAudience(to),
      sub: from,
      iat,
      call_id: call.callId,
      node_id: call.nodeId,
      call_sha256: await callDigest(call),
    })
      .setProtectedHeader({ alg: "EdDSA", kid: this.key.kid, typ: RELAY_TYP })
      .setJti(crypto.randomUUID())
      .setExpirationTime(iat + RELAY_TOKEN_TTL_SECS)
      .sign(this.key.privateKey);
  }

  /**
   * Checks an `authorization: Bearer` header value presented to relay `self` for `call`: the
   * signature, this relay as audience, freshness, and that the token was issued for this very
   * call, node, tool, arguments and deadline. Spending it is the caller's next step.
   */
  async verify(header: string | null, self: string, call: ForwardedCall): Promise<RelayGrant> {
    const token = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (!token) throw new AegisError("UNAUTHENTICATED", "a relay peer call needs a relay token");
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.issuer,
        audience: relayAudience(self),
        typ: RELAY_TYP,
        algorithms: ["EdDSA"],
        requiredClaims: ["sub", "exp", "iat", "jti", "call_id", "node_id", "call_sha256"],
        clockTolerance: RELAY_TOKEN_LEEWAY_SECS,
        maxTokenAge: RELAY_TOKEN_TTL_SECS + RELAY_TOKEN_LEEWAY_SECS,
        currentDate: this.clock(),
      }));
    } catch {
      throw new AegisError(
        "UNAUTHENTICATED",
        `the relay token is invalid, expired, not a relay token or not for relay ${self}`,
      );
    }
    if (
      payload.call_id !== call.callId || payload.node_id !== call.nodeId ||
      payload.call_sha256 !== await callDigest(call)
    ) {
      throw new AegisError(
        "UNAUTHENTICATED",
        "the relay token was issued for another call, host, tool or arguments",
      );
    }
    return {
      caller: payload.sub!,
      jti: payload.jti!,
      usableUntil: new Date((payload.exp! + RELAY_TOKEN_LEEWAY_SECS) * 1000),
    };
  }
}
