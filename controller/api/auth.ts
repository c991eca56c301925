// Bearer operator tokens on REST routes.
import { createMiddleware } from "hono/factory";
import { AegisError } from "../../shared/errors.ts";
import type { Operator } from "../app/operators.ts";
import type { TokenAuthority } from "../app/tokens.ts";

export type ApiEnv = { Variables: { operator: Operator } };

export function requireOperator(tokens: TokenAuthority) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = header.match(/^Bearer\s+(\S+)$/i);
    if (!match) {
      throw new AegisError("UNAUTHENTICATED", "missing Authorization: Bearer <operator token>");
    }
    c.set("operator", await tokens.verifyOperator(match[1]));
    await next();
  });
}
