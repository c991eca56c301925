// Who is calling, once a token was verified: an operator (our own tokens, or an operator realm
// such as Keycloak's aegis-system) or a consumer user (a realm such as zaru-consumer, one
// per-user tenant each). Every transport (REST, MCP, the console) turns a bearer token into a
// Principal here and every domain service takes one, so what a caller may do is decided once.
import { AegisError } from "../../shared/errors.ts";
import type { OperatorClaims } from "../../shared/tokens/claims.ts";

export const IDENTITY_KINDS = ["operator", "consumer"] as const;
export type IdentityKind = typeof IDENTITY_KINDS[number];

/** Platform roles of the edge (seed 001), as an identity provider grants them. */
export const EDGE_ROLES = {
  fleetManage: "aegis.edge.fleet.manage",
  enroll: "aegis.edge.enroll",
  heartbeat: "aegis.edge.heartbeat",
} as const;
export type EdgeRole = typeof EDGE_ROLES[keyof typeof EDGE_ROLES];

/** The security context operators run under (seed 002). */
export const OPERATOR_CONTEXT = "aegis-system-operator";

/**
 * A verified caller. It keeps the operator claims' shape (tenant_id, tenants, aegis_role) so the
 * tenant and writer checks of operators.ts apply to both kinds: a consumer acts on its own
 * per-user tenant only, as a writer of it, and what it may do there is narrowed by its context.
 */
export interface Principal extends OperatorClaims {
  kind: IdentityKind;
  /** The security context the caller's work runs under (zaru-pro, aegis-system-operator, ...). */
  context: string;
  /** The consumer's subscription tier as its token names it (Free, Pro, ...); operators: none. */
  tier?: string;
  /** Edge roles (aegis.edge.*) the identity holds. */
  roles: string[];
}

/** Who did something, as executions and the audit log record it. */
export interface Actor {
  kind: IdentityKind | "node" | "system";
  issuer: string;
  subject: string;
  context: string;
}

/** Default edge roles of a token that names none: what its platform role always allowed. */
const ROLE_DEFAULTS: Record<OperatorClaims["aegis_role"], EdgeRole[]> = {
  admin: [EDGE_ROLES.fleetManage, EDGE_ROLES.enroll],
  operator: [EDGE_ROLES.fleetManage, EDGE_ROLES.enroll],
  readonly: [],
};

/**
 * The principal of an operator token. A token that carries a roles claim gets exactly those
 * edge roles; one that carries none (our own tokens minted before roles existed, an identity
 * provider not set up for them) gets what its aegis_role always allowed.
 */
export function operatorPrincipal(claims: OperatorClaims, roles?: readonly string[]): Principal {
  const explicit = roles ?? claims.roles;
  return {
    ...claims,
    kind: "operator",
    context: OPERATOR_CONTEXT,
    roles: explicit ? [...explicit] : [...ROLE_DEFAULTS[claims.aegis_role]],
  };
}

/** Any operator-shaped value (tests and older call sites pass bare claims) as a Principal. */
export function asPrincipal(who: OperatorClaims | Principal): Principal {
  return "kind" in who && "context" in who ? who as Principal : operatorPrincipal(who);
}

export function actorOf(who: OperatorClaims | Principal): Actor {
  const principal = asPrincipal(who);
  return {
    kind: principal.kind,
    issuer: principal.iss,
    subject: principal.sub,
    context: principal.context,
  };
}

export function hasRole(who: OperatorClaims | Principal, role: EdgeRole): boolean {
  return asPrincipal(who).roles.includes(role);
}

/** Refuses a caller without `role`, naming it, whatever transport the request came by. */
export function requireRole(who: OperatorClaims | Principal, role: EdgeRole, action: string): void {
  if (hasRole(who, role)) return;
  throw new AegisError("FORBIDDEN", `${action} needs the role ${role}`, {
    hint: `Ask your identity provider's admin to grant ${role} to ${asPrincipal(who).sub}.`,
  });
}

/** REST's operator routes take operators only; a consumer token reaches the edge through MCP. */
export function requireOperatorKind(principal: Principal): void {
  if (principal.kind === "operator") return;
  throw new AegisError(
    "FORBIDDEN",
    "a consumer user's token cannot use the operator API; connect through the MCP endpoint " +
      "(/mcp/v1)",
  );
}

/** The longest identity header value read; anything longer cannot match a token's claim. */
const MAX_IDENTITY_HEADER = 256;

/**
 * Identity headers a client sends beside its token (X-Zaru-User-ID, X-Zaru-Tier) are claims of
 * its own, not proof: a request whose headers name another user or tier than the verified
 * token is refused rather than trusted either way. Absent headers are fine.
 */
export function checkIdentityHeaders(
  principal: Principal,
  headers: { userId?: string | null; tier?: string | null },
): void {
  const refuse = (what: string) =>
    new AegisError("UNAUTHENTICATED", `the ${what} header disagrees with the token`, {
      hint: "Send the headers of the user the token was issued to, or none.",
    });
  const userId = headers.userId?.trim();
  if (userId !== undefined && userId !== "") {
    if (userId.length > MAX_IDENTITY_HEADER || userId !== principal.sub) {
      throw refuse("X-Zaru-User-ID");
    }
  }
  const tier = headers.tier?.trim();
  if (tier !== undefined && tier !== "") {
    if (
      tier.length > MAX_IDENTITY_HEADER || principal.tier === undefined ||
      tier.toLowerCase() !== principal.tier.toLowerCase()
    ) {
      throw refuse("X-Zaru-Tier");
    }
  }
}

/**
 * A bearer credential that never shows itself: printing, logging, JSON-encoding or inspecting
 * it yields "[redacted]"; only reveal() gives the text, for the one call that verifies it.
 */
export class RedactedToken {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[redacted]";
  }

  toJSON(): string {
    return "[redacted]";
  }

  [Symbol.for("Deno.customInspect")](): string {
    return "RedactedToken([redacted])";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "RedactedToken([redacted])";
  }
}
