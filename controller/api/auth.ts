// Bearer tokens on REST routes. Every caller is verified into a Principal here; the operator API
// (/v1/edge/...) takes operators only, the executions and audit routes take consumer users too,
// each on its own tenant. Identity headers a client adds must agree with the verified token.
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { AegisError } from "../../shared/errors.ts";
import {
  checkIdentityHeaders,
  type Principal,
  RedactedToken,
  requireOperatorKind,
} from "../app/identity.ts";
import type { TokenAuthority } from "../app/tokens.ts";

export type ApiEnv = { Variables: { operator: Principal; log: (message: string) => void } };

/** The bearer token of a request, wrapped so that no log line or error can print it. */
export function bearerToken(header: string | undefined): RedactedToken | undefined {
  const match = (header ?? "").match(/^Bearer\s+(\S+)$/i);
  return match ? new RedactedToken(match[1]) : undefined;
}

/** Verifies the caller of a request (either kind) and the identity headers it sent. */
export async function verifyCaller(tokens: TokenAuthority, c: Context): Promise<Principal> {
  const token = bearerToken(c.req.header("authorization"));
  if (!token) {
    throw new AegisError("UNAUTHENTICATED", "missing Authorization: Bearer <token>");
  }
  const principal = await tokens.verifyPrincipal(token);
  checkIdentityHeaders(principal, {
    userId: c.req.header("x-zaru-user-id"),
    tier: c.req.header("x-zaru-tier"),
  });
  return principal;
}

/** Any verified caller: an operator, or a consumer user acting on its own tenant. */
export function requireCaller(tokens: TokenAuthority) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    c.set("operator", await verifyCaller(tokens, c));
    await next();
  });
}

/** Operators only (runs after requireCaller). */
export const operatorsOnly = createMiddleware<ApiEnv>(async (c, next) => {
  requireOperatorKind(c.get("operator"));
  await next();
});

/** An operator token (the whole operator API). */
export function requireOperator(tokens: TokenAuthority) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const principal = await verifyCaller(tokens, c);
    requireOperatorKind(principal);
    c.set("operator", principal);
    await next();
  });
}
