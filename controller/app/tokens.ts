// Issues and verifies every JWT the controller signs. Verification failures become distinct,
// typed errors: malformed, expired, from another controller, wrong kind.
import {
  createLocalJWKSet,
  decodeJwt,
  errors as joseErrors,
  type JWTPayload,
  jwtVerify,
} from "jose";
import type { z } from "zod";
import { AegisError, type ErrorCode } from "../../shared/errors.ts";
import {
  AUDIENCE,
  type EnrollmentClaims,
  EnrollmentClaimsSchema,
  type LoginLinkClaims,
  LoginLinkClaimsSchema,
  type NodeClaims,
  NodeClaimsSchema,
  OperatorClaimsSchema,
  type OperatorRole,
} from "../../shared/tokens/claims.ts";
import type { SigningKey } from "./signing_key.ts";
import { signJwt } from "./jws_sign.ts";
import { type Clock, seconds, systemClock } from "./clock.ts";
import { ExternalIssuers, UnknownIssuer } from "./external_issuers.ts";
import type { TrustedIssuer } from "../auth_config.ts";
import {
  operatorPrincipal,
  type Principal,
  type RedactedToken,
  requireOperatorKind,
} from "./identity.ts";
import { SecurityContexts } from "./security_contexts.ts";
import { OperatorTokenCache } from "./operator_token_cache.ts";

/** Leeway for exp/nbf on tokens we verify: a few minutes, as common practice. */
export const EXPIRY_LEEWAY_SECS = 120;

/** A host that was off for a week can still refresh its token with its key, not re-enroll. */
export const REFRESH_GRACE_SECS = 7 * 86400;

/** "No time limit" for jose, which wants a finite tolerance: a century. */
const ANY_AGE_SECS = 100 * 365 * 86400;

export class TokenAuthority {
  readonly #key: SigningKey;
  readonly #jwks: ReturnType<typeof createLocalJWKSet>;
  readonly #external: ExternalIssuers;
  readonly #contexts: SecurityContexts;
  readonly issuer: string;
  readonly #clock: Clock;

  constructor(
    key: SigningKey,
    issuer: string,
    clock: Clock = systemClock,
    external: ExternalIssuers = new ExternalIssuers([]),
    contexts: SecurityContexts = new SecurityContexts(),
  ) {
    this.#contexts = contexts;
    this.#key = key;
    this.issuer = issuer;
    this.#clock = clock;
    this.#jwks = createLocalJWKSet({ keys: [key.publicJwk] });
    this.#external = external;
  }

  get jwks(): { keys: unknown[] } {
    return { keys: [this.#key.publicJwk] };
  }

  /** The MAC key of attestation challenges: derived from the signing key, so relays share it. */
  get challengeKey(): Uint8Array {
    return this.#key.challengeKey;
  }

  async issueEnrollment(input: {
    tenantId: string;
    name: string;
    cep: string;
    ttlSecs: number;
    /** Binds the token to hostnames matching this glob (claim `hnp`). */
    hostnamePattern?: string;
  }): Promise<{ token: string; claims: EnrollmentClaims }> {
    const iat = seconds(this.#clock());
    const claims: EnrollmentClaims = {
      iss: this.issuer,
      aud: AUDIENCE.enrollment,
      jti: crypto.randomUUID(),
      iat,
      exp: iat + input.ttlSecs,
      cep: input.cep,
      tenant_id: input.tenantId,
      name: input.name,
      ...(input.hostnamePattern ? { hnp: input.hostnamePattern } : {}),
    };
    return { token: await this.#sign(claims), claims };
  }

  async issueNode(input: {
    nodeId: string;
    tenantId: string;
    keyFingerprint: string;
    ttlSecs: number;
  }): Promise<{ token: string; claims: NodeClaims }> {
    const iat = seconds(this.#clock());
    const claims: NodeClaims = {
      iss: this.issuer,
      aud: AUDIENCE.node,
      sub: input.nodeId,
      jti: crypto.randomUUID(),
      iat,
      exp: iat + input.ttlSecs,
      tenant_id: input.tenantId,
      cnf: { kfp: input.keyFingerprint },
    };
    return { token: await this.#sign(claims), claims };
  }

  async issueOperator(input: {
    subject: string;
    tenantId: string;
    role: OperatorRole;
    tenants?: string[];
    ttlSecs: number;
  }): Promise<string> {
    const iat = seconds(this.#clock());
    return await this.#sign({
      iss: this.issuer,
      aud: AUDIENCE.operator,
      sub: input.subject,
      jti: crypto.randomUUID(),
      iat,
      exp: iat + input.ttlSecs,
      tenant_id: input.tenantId,
      aegis_role: input.role,
      tenants: input.tenants ?? [],
    });
  }

  /**
   * A one-time web console login link: the operator claims it signs in with, for ttlSecs. That it
   * is used once is the console's to enforce (ConsoleSessions.signInWithLink), at redemption.
   */
  async issueLoginLink(input: {
    subject: string;
    tenantId: string;
    role: OperatorRole;
    tenants?: string[];
    ttlSecs: number;
  }): Promise<{ token: string; expiresAt: Date }> {
    const iat = seconds(this.#clock());
    const exp = iat + input.ttlSecs;
    const token = await this.#sign({
      iss: this.issuer,
      aud: AUDIENCE.login,
      sub: input.subject,
      jti: crypto.randomUUID(),
      iat,
      exp,
      tenant_id: input.tenantId,
      aegis_role: input.role,
      tenants: input.tenants ?? [],
    });
    return { token, expiresAt: new Date(exp * 1000) };
  }

  verifyLoginLink(token: string): Promise<LoginLinkClaims> {
    return this.#verify(token, AUDIENCE.login, LoginLinkClaimsSchema, {
      malformed: "UNAUTHENTICATED",
      expired: "UNAUTHENTICATED",
      foreign: "UNAUTHENTICATED",
      what: "login link",
    });
  }

  verifyEnrollment(token: string): Promise<EnrollmentClaims> {
    return this.#verify(token, AUDIENCE.enrollment, EnrollmentClaimsSchema, {
      malformed: "ENROLL_TOKEN_MALFORMED",
      expired: "ENROLL_TOKEN_EXPIRED",
      foreign: "ENROLL_TOKEN_WRONG_CONTROLLER",
      what: "enrollment token",
    });
  }

  verifyNode(token: string): Promise<NodeClaims> {
    return this.#verify(token, AUDIENCE.node, NodeClaimsSchema, {
      malformed: "NODE_TOKEN_INVALID",
      expired: "NODE_TOKEN_EXPIRED",
      foreign: "NODE_TOKEN_INVALID",
      what: "node token",
    });
  }

  /** A node token whose only fault may be that it expired (within REFRESH_GRACE_SECS). */
  verifyNodeForRefresh(token: string): Promise<NodeClaims> {
    const kinds = {
      malformed: "NODE_TOKEN_INVALID",
      expired: "NODE_TOKEN_EXPIRED",
      foreign: "NODE_TOKEN_INVALID",
      what: "node token",
    } as const;
    return this.#verify(token, AUDIENCE.node, NodeClaimsSchema, kinds, REFRESH_GRACE_SECS);
  }

  /**
   * A node token that is ours, well-formed and for a node, whatever its age. Only for finishing a
   * rotation the controller already recorded: there the new key's signature over that rotation
   * authorises the request, and the token only names the node and the key it replaced.
   */
  verifyNodeAnyAge(token: string): Promise<NodeClaims> {
    const kinds = {
      malformed: "NODE_TOKEN_INVALID",
      expired: "NODE_TOKEN_EXPIRED",
      foreign: "NODE_TOKEN_INVALID",
      what: "node token",
    } as const;
    return this.#verify(token, AUDIENCE.node, NodeClaimsSchema, kinds, ANY_AGE_SECS);
  }

  /** Caller tokens verified before: a request with one costs a map lookup, not a signature. */
  readonly operatorTokens = new OperatorTokenCache();

  /**
   * An operator's token (REST, the console): a consumer user's token is refused here, it
   * reaches the edge through MCP only.
   */
  async verifyOperator(token: string | RedactedToken): Promise<Principal> {
    const principal = await this.verifyPrincipal(token);
    requireOperatorKind(principal);
    return principal;
  }

  /**
   * Any caller's token: ours, or one from a trusted issuer of either kind, from the cache when
   * it was verified before. A revoked token id (revokeOperator) is refused whether cached or not.
   */
  async verifyPrincipal(token: string | RedactedToken): Promise<Principal> {
    const trimmed = (typeof token === "string" ? token : token.reveal()).trim();
    const now = this.#clock().getTime();
    const cached = this.operatorTokens.get(trimmed, now);
    if (cached) return cached as Principal;
    const principal = await this.#verifyCallerFully(trimmed);
    const jti = tokenId(trimmed);
    if (this.operatorTokens.isRevoked(jti, now)) {
      throw new AegisError("UNAUTHENTICATED", "the token was revoked");
    }
    this.operatorTokens.set(trimmed, principal, jti, now);
    return principal;
  }

  /** The operator token with this id is refused from now on (on this process). */
  revokeOperator(jti: string, expiresAt?: Date): void {
    this.operatorTokens.revoke(jti, expiresAt?.getTime() ?? Infinity);
  }

  async #verifyCallerFully(trimmed: string): Promise<Principal> {
    const kinds = {
      malformed: "UNAUTHENTICATED",
      expired: "UNAUTHENTICATED",
      foreign: "UNAUTHENTICATED",
      what: "operator token",
    } as const;
    // A token naming an external issuer is checked against that issuer only, never ours.
    const issuer = this.#external.issuerOf(trimmed);
    if (!issuer) {
      // A token naming another issuer (a provider not configured, another controller) is refused
      // as such, not with whatever checking it against our own key finds first (an algorithm
      // we do not accept, an unknown kid), which sent people looking in the wrong place.
      const named = unverifiedIssuer(trimmed);
      if (named !== undefined && named !== this.issuer) {
        throw new AegisError(
          "UNAUTHENTICATED",
          "the token's issuer is not trusted here (neither this controller nor one of auth.issuers)",
        );
      }
      const claims = await this.#verify(trimmed, AUDIENCE.operator, OperatorClaimsSchema, kinds);
      return operatorPrincipal(claims);
    }
    const what = issuer.kind === "consumer" ? "user token" : "operator token";
    const payload = await this.#external
      .verify(trimmed, this.#clock, EXPIRY_LEEWAY_SECS)
      .catch((cause) => {
        if (cause instanceof UnknownIssuer) {
          throw new AegisError("UNAUTHENTICATED", `the ${what}'s issuer is not trusted`);
        }
        const error = this.#mapJoseError(cause, { ...kinds, what });
        // The default hint (AEGIS_TOKEN, --token) is for operators at a terminal; a consumer's
        // client gets its tokens from the identity provider.
        throw issuer.kind === "consumer" ? withUserTokenHint(error) : error;
      });
    const roles = rolesAt(payload, issuer.roles_claim);
    if (issuer.kind === "operator") {
      const claims = parseClaims(
        { ...payload, aegis_role: withoutRealmPrefix(payload.aegis_role) },
        OperatorClaimsSchema,
        kinds,
      );
      return operatorPrincipal(claims, roles);
    }
    return this.#consumerPrincipal(payload, issuer, roles ?? []);
  }

  /** A consumer user: the tenant its realm gave it, the context its tier maps to. */
  #consumerPrincipal(payload: JWTPayload, issuer: TrustedIssuer, roles: string[]): Principal {
    const refuse = (message: string) =>
      withUserTokenHint(new AegisError("UNAUTHENTICATED", message));
    const tenant = claimAt(payload, issuer.tenant_claim);
    if (typeof tenant !== "string" || !new RegExp(issuer.tenant_pattern).test(tenant)) {
      throw refuse(`the user token's ${issuer.tenant_claim} claim is not a per-user tenant`);
    }
    const tier = claimAt(payload, issuer.tier_claim);
    if (typeof tier !== "string" || tier.length > 64) {
      throw refuse(`the user token has no ${issuer.tier_claim} claim`);
    }
    const context = this.#contexts.contextForTier(tier);
    if (!context) {
      throw new AegisError("FORBIDDEN", `the tier "${tier}" has no security context here`, {
        hint: "An operator maps tiers to contexts under security.tiers in aegis-config.yaml.",
      });
    }
    return {
      iss: String(payload.iss),
      sub: String(payload.sub),
      exp: Number(payload.exp),
      tenant_id: tenant,
      tenants: [],
      // A consumer writes to its own tenant only; its context narrows what it may do there.
      aegis_role: "operator",
      kind: "consumer",
      context,
      tier,
      roles,
    };
  }

  #sign(claims: JWTPayload): Promise<string> {
    // node:crypto, not jose's WebCrypto signing: see jws_sign.ts.
    return Promise.resolve(signJwt(this.#key, claims));
  }

  async #verify<S extends z.ZodType>(
    token: string,
    audience: string,
    schema: S,
    kinds: ErrorKinds,
    toleranceSecs = EXPIRY_LEEWAY_SECS,
  ): Promise<z.infer<S>> {
    try {
      const { payload } = await jwtVerify(token.trim(), this.#jwks, {
        issuer: this.issuer,
        audience,
        algorithms: ["EdDSA"],
        clockTolerance: toleranceSecs,
        currentDate: this.#clock(),
      });
      return parseClaims(payload, schema, kinds);
    } catch (error) {
      throw this.#mapJoseError(error, kinds);
    }
  }

  #mapJoseError(error: unknown, kinds: ErrorKinds): AegisError {
    if (error instanceof AegisError) return error;
    if (error instanceof joseErrors.JWTExpired) {
      const exp = Number((error.payload as JWTPayload).exp);
      return new AegisError(kinds.expired, `the ${kinds.what} expired at ${isoSeconds(exp)}`, {
        details: { expired_at: isoSeconds(exp), server_time: this.#clock().toISOString() },
      });
    }
    if (error instanceof joseErrors.JWKSNoMatchingKey) {
      return new AegisError(
        kinds.foreign,
        `the ${kinds.what} was signed by a different controller`,
      );
    }
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      if (error.claim === "iss") {
        return new AegisError(
          kinds.foreign,
          `the ${kinds.what} was issued by a different controller`,
        );
      }
      if (error.claim === "aud") {
        const article = /^[aeio]/.test(kinds.what) ? "an" : "a";
        return new AegisError(
          kinds.malformed,
          `this is not ${article} ${kinds.what} (wrong audience)`,
        );
      }
      return new AegisError(kinds.malformed, `the ${kinds.what} is invalid: ${error.message}`);
    }
    if (error instanceof joseErrors.JOSEAlgNotAllowed) {
      return new AegisError(
        kinds.malformed,
        `the ${kinds.what} is signed with an algorithm this controller does not accept`,
      );
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
      return new AegisError(
        kinds.malformed,
        `the ${kinds.what} signature is invalid (altered token?)`,
      );
    }
    return new AegisError(kinds.malformed, `the ${kinds.what} cannot be read`);
  }
}

interface ErrorKinds {
  malformed: ErrorCode;
  expired: ErrorCode;
  foreign: ErrorCode;
  what: string;
}

function parseClaims<S extends z.ZodType>(
  payload: unknown,
  schema: S,
  kinds: ErrorKinds,
): z.infer<S> {
  const parsed = schema.safeParse(payload);
  if (!parsed.success) {
    const keys = parsed.error.issues.map((i) => i.path.join(".")).join(", ");
    throw new AegisError(kinds.malformed, `the ${kinds.what} lacks valid claims (${keys})`);
  }
  return parsed.data;
}

const USER_TOKEN_HINT =
  "Sign in again through your identity provider; its client sends the token it issues as-is.";

/** The same refusal of a consumer user's token, with a hint a user (not an operator) can act on. */
function withUserTokenHint(error: AegisError): AegisError {
  if (error.code !== "UNAUTHENTICATED") return error;
  return new AegisError(error.code, error.message, {
    hint: USER_TOKEN_HINT,
    details: error.details,
    cause: error.cause,
  });
}

/** The `iss` a token claims, unverified (undefined when it cannot be read or names none). */
function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** The `jti` of a token already verified ("" when it has none). */
function tokenId(token: string): string {
  const jti = decodeJwt(token).jti;
  return typeof jti === "string" ? jti : "";
}

function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(".000Z", "Z");
}

/** The value at a dotted claim path (realm_access.roles), or undefined. */
function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** The edge roles a token lists, or undefined when it has no such claim at all. */
function rolesAt(payload: JWTPayload, path: string): string[] | undefined {
  const value = claimAt(payload, path);
  if (!Array.isArray(value)) return undefined;
  return value.filter((role): role is string => typeof role === "string" && role.length <= 128)
    .slice(0, 256);
}

/** Keycloak realms often spell roles "aegis:admin"; the claim means the same as "admin". */
function withoutRealmPrefix(role: unknown): unknown {
  return typeof role === "string" && role.startsWith("aegis:") ? role.slice(6) : role;
}
