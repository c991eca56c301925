// The JWTs of the product and their claims. Each kind has its own audience, so one can never be
// presented as another. The CLI decodes enrollment tokens without verifying (the server does).
import { z } from "zod";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { AegisError } from "../errors.ts";

export const AUDIENCE = {
  enrollment: "aegis:edge:enroll",
  node: "aegis:edge:node",
  operator: "aegis:operator",
  /** A one-time web console login link (aegis-controller token create --login). */
  login: "aegis:console:login",
} as const;

export const OPERATOR_ROLES = ["admin", "operator", "readonly"] as const;
export type OperatorRole = typeof OPERATOR_ROLES[number];

const base = {
  iss: z.string().min(1),
  jti: z.string().min(1),
  iat: z.number().int(),
  exp: z.number().int(),
};

export const EnrollmentClaimsSchema = z.object({
  ...base,
  aud: z.literal(AUDIENCE.enrollment),
  /** The controller endpoint the host must talk to. */
  cep: z.string().min(1),
  tenant_id: z.string().min(1),
  name: z.string().default(""),
  /** A hostname glob the enrolling host's hostname must match (the token is not spent if not). */
  hnp: z.string().min(1).max(253).optional(),
});
export type EnrollmentClaims = z.infer<typeof EnrollmentClaimsSchema>;

export const NodeClaimsSchema = z.object({
  ...base,
  aud: z.literal(AUDIENCE.node),
  sub: z.string().min(1),
  tenant_id: z.string().min(1),
  /** Key binding: the token is only good with the key of this fingerprint. */
  cnf: z.object({ kfp: z.string().startsWith("SHA256:") }),
});
export type NodeClaims = z.infer<typeof NodeClaimsSchema>;

export const OperatorClaimsSchema = z.object({
  iss: z.string().min(1),
  sub: z.string().min(1),
  exp: z.number().int(),
  tenant_id: z.string().min(1),
  aegis_role: z.enum(OPERATOR_ROLES),
  /** Further tenants this identity administers (a team tenant besides a personal one). */
  tenants: z.array(z.string().min(1)).default([]),
  /**
   * Edge roles (aegis.edge.fleet.manage, aegis.edge.enroll...). Absent: the defaults of
   * aegis_role (identity.ts), as tokens minted before roles existed always had.
   */
  roles: z.array(z.string().min(1).max(128)).max(64).optional(),
});
export type OperatorClaims = z.infer<typeof OperatorClaimsSchema>;

export const LoginLinkClaimsSchema = OperatorClaimsSchema.extend({
  aud: z.literal(AUDIENCE.login),
  jti: z.string().min(1),
});
export type LoginLinkClaims = z.infer<typeof LoginLinkClaimsSchema>;

/**
 * Reads an enrollment token without checking its signature: enough to find the controller.
 * Everything about it that the host can judge is judged here, so a typo fails before the network.
 */
export function decodeEnrollmentToken(token: string): EnrollmentClaims {
  const trimmed = token.trim();
  if (trimmed.split(".").length !== 3) {
    throw new AegisError(
      "ENROLL_TOKEN_MALFORMED",
      "the enrollment token is not a JWT (three dot-separated parts)",
    );
  }
  let payload: unknown;
  try {
    decodeProtectedHeader(trimmed);
    payload = decodeJwt(trimmed);
  } catch {
    throw new AegisError("ENROLL_TOKEN_MALFORMED", "the enrollment token cannot be decoded");
  }
  const parsed = EnrollmentClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    const keys = parsed.error.issues.map((i) => i.path.join(".") || "(token)").join(", ");
    throw new AegisError(
      "ENROLL_TOKEN_MALFORMED",
      `this is not an AEGIS enrollment token (bad or missing claims: ${keys})`,
    );
  }
  return parsed.data;
}

/** Reads a node token's claims without verifying, for local consistency checks. */
export function decodeNodeToken(token: string): NodeClaims {
  let payload: unknown;
  try {
    payload = decodeJwt(token.trim());
  } catch {
    throw new AegisError("NODE_TOKEN_INVALID", "node.token is not a JWT");
  }
  const parsed = NodeClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    throw new AegisError("NODE_TOKEN_INVALID", "node.token is not an AEGIS node token");
  }
  return parsed.data;
}
