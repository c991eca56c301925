// The `auth:` section of aegis-config.yaml: the signing key, our issuer name, and the external
// identity providers whose tokens we accept. An external issuer is trusted only with everything
// pinned: its `iss`, the audience it mints for us, the algorithms it signs with, and a JWKS URL
// that cannot be swapped on the wire (https; plain http only to this machine, for tests).
import { z } from "zod";

/** The `iss` of the tokens this controller signs, unless auth.issuer says otherwise. */
export const DEFAULT_ISSUER = "aegis-controller";

/** Asymmetric JWS algorithms only: an HS* key taken from a public JWKS is no secret at all. */
export const EXTERNAL_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;
export type ExternalAlgorithm = typeof EXTERNAL_ALGORITHMS[number];

export const DEFAULT_ALGORITHMS: ExternalAlgorithm[] = ["RS256", "EdDSA", "ES256"];

/**
 * Whom an issuer's tokens name: operators (a realm like Keycloak's aegis-system, claims tenant_id
 * and aegis_role) or consumer users (a realm like zaru-consumer: a tier claim and a per-user
 * tenant). A token is only ever read as its issuer's kind.
 */
export const ISSUER_KINDS = ["operator", "consumer"] as const;
export type IssuerKind = typeof ISSUER_KINDS[number];

/** A per-user tenant as the consumer realm's protocol mapper writes it: u-{uuid}. */
export const DEFAULT_CONSUMER_TENANT_PATTERN =
  "^u-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/** A claim path: names joined by dots (realm_access.roles), as Keycloak nests its claims. */
const ClaimPath = z.string().regex(
  /^[A-Za-z_][A-Za-z0-9_:-]{0,63}(\.[A-Za-z_][A-Za-z0-9_:-]{0,63}){0,3}$/,
);

const Pattern = z.string().min(1).max(256).superRefine((value, ctx) => {
  try {
    new RegExp(value);
  } catch (error) {
    ctx.addIssue({
      code: "custom",
      message: `not a regular expression: ${(error as Error).message}`,
    });
  }
});

/** True for 127.0.0.0/8, ::1 and localhost: a JWKS there never crosses a network. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost") || host === "::1") return true;
  const v4 = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  return v4 !== null && Number(v4[1]) === 127 && v4.slice(2).every((o) => Number(o) <= 255);
}

/** Why a JWKS URL is unacceptable, or undefined when it is fine. */
export function jwksUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "is not a URL";
  }
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return undefined;
  return "must be an https:// URL (plain http is allowed only for 127.0.0.0/8, ::1 and localhost)";
}

const JwksUrl = z.string().superRefine((value, ctx) => {
  const problem = jwksUrlProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: `"${value}" ${problem}` });
});

/** An endpoint the console's OIDC sign-in talks to: the same rule as a JWKS URL. */
const OidcEndpoint = JwksUrl;

/**
 * Browser sign-in to the web console through this issuer (authorization code + PKCE). The token
 * the provider returns is checked exactly like a pasted operator token from this issuer, so its
 * `aud` must be this issuer's `audience` (for an id_token: the client_id).
 */
const OidcLoginSchema = z.object({
  authorization_endpoint: OidcEndpoint,
  token_endpoint: OidcEndpoint,
  client_id: z.string().min(1),
  /** The NAME of an environment variable holding the client secret (never the secret itself). */
  client_secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).min(1).default(["openid"]),
  /** Which token of the token response carries the operator claims. */
  operator_token: z.enum(["id_token", "access_token"]).default("id_token"),
  /** The sign-in button's name for the provider; the issuer when absent. */
  display_name: z.string().min(1).max(64).optional(),
}).strict().refine((o) => o.operator_token !== "id_token" || o.scopes.includes("openid"), {
  message: 'an id_token is issued only for the "openid" scope: add it to oidc.scopes',
  path: ["scopes"],
});
export type OidcLoginConfig = z.infer<typeof OidcLoginSchema>;

const TrustedIssuerSchema = z.object({
  /** The exact `iss` claim; tokens from any other issuer are not checked against this JWKS. */
  issuer: z.string().min(1),
  /** The `aud` the provider puts in tokens meant for this controller. */
  audience: z.string().min(1),
  jwks_url: JwksUrl,
  algorithms: z.array(z.enum(EXTERNAL_ALGORITHMS)).min(1).default(DEFAULT_ALGORITHMS),
  kind: z.enum(ISSUER_KINDS).default("operator"),
  /**
   * Where the token lists its edge roles (aegis.edge.fleet.manage, aegis.edge.enroll). A token
   * without that claim holds its aegis_role's defaults (operators) or none (consumers).
   */
  roles_claim: ClaimPath.default("realm_access.roles"),
  /** Consumers: the claim naming the subscription tier (mapped by security.tiers). */
  tier_claim: ClaimPath.default("zaru_tier"),
  /** Consumers: the claim naming the user's own tenant. */
  tenant_claim: ClaimPath.default("tenant_id"),
  /** Consumers: what that tenant must look like; anything else is refused. */
  tenant_pattern: Pattern.default(DEFAULT_CONSUMER_TENANT_PATTERN),
  /** How soon an unknown `kid` may trigger another JWKS fetch (a key rotation at the provider). */
  jwks_cooldown_secs: z.number().int().min(0).max(3600).default(30),
  /** How long a fetched JWKS is used before it is fetched again. */
  jwks_max_age_secs: z.number().int().min(1).max(86400).default(600),
  /** Optional: the web console offers "Sign in with <provider>" through this issuer. */
  oidc: OidcLoginSchema.optional(),
}).strict().refine((issuer) => !(issuer.kind === "consumer" && issuer.oidc), {
  message: "console sign-in (oidc) is for operator issuers; consumers reach the edge through MCP",
  path: ["oidc"],
});
export type TrustedIssuer = z.infer<typeof TrustedIssuerSchema>;

/** At most this many external issuers: each one is a JWKS cache and a fetch target. */
export const MAX_TRUSTED_ISSUERS = 16;

export const AuthSchema = z.object({
  /** Ed25519 JWK used to sign every token; shared by relays that share a database. */
  signing_key_file: z.string().optional(),
  issuer: z.string().optional(),
  issuers: z.array(TrustedIssuerSchema).max(MAX_TRUSTED_ISSUERS).default([]),
  /** The first form of one external operator IdP; still read, same rules as `issuers`. */
  operator_jwks_url: JwksUrl.optional(),
  operator_issuer: z.string().min(1).optional(),
  operator_audience: z.string().min(1).optional(),
  operator_algorithms: z.array(z.enum(EXTERNAL_ALGORITHMS)).min(1).optional(),
}).strict().superRefine((auth, ctx) => {
  const names = auth.issuers.map((i) => i.issuer);
  if (auth.operator_issuer) names.push(auth.operator_issuer);
  if (names.includes(auth.issuer ?? DEFAULT_ISSUER)) {
    ctx.addIssue({
      code: "custom",
      path: ["issuers"],
      message: `an external issuer cannot be named "${auth.issuer ?? DEFAULT_ISSUER}", ` +
        "the name this controller signs its own tokens with (auth.issuer)",
    });
  }
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) {
    ctx.addIssue({
      code: "custom",
      path: ["issuers"],
      message: `issuer "${repeated}" is listed twice; each issuer has one audience and one JWKS`,
    });
  }
  if (!auth.operator_jwks_url) return;
  for (const key of ["operator_issuer", "operator_audience"] as const) {
    if (!auth[key]) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `auth.${key} is required when auth.operator_jwks_url is set`,
      });
    }
  }
});
export type AuthConfig = z.infer<typeof AuthSchema>;

/** Every external issuer the config trusts, the legacy `operator_*` keys included. */
export function trustedIssuers(auth: AuthConfig): TrustedIssuer[] {
  const list = [...auth.issuers];
  if (auth.operator_jwks_url && auth.operator_issuer && auth.operator_audience) {
    list.push(TrustedIssuerSchema.parse({
      issuer: auth.operator_issuer,
      audience: auth.operator_audience,
      jwks_url: auth.operator_jwks_url,
      ...(auth.operator_algorithms ? { algorithms: auth.operator_algorithms } : {}),
    }));
  }
  return list;
}
