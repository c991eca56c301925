// One JSON error shape for every REST route: {"error": {"code", "message", "hint"?, "details"?}}.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { AegisError, toAegisError } from "../../shared/errors.ts";

export function onApiError(log: (message: string) => void) {
  return (error: Error, c: Context) => {
    if (error instanceof HTTPException && !(error.cause instanceof AegisError)) {
      const code = error.status === 404 ? "NOT_FOUND" : "INVALID_ARGUMENT";
      return c.json({ error: { code, message: error.message || "bad request" } }, error.status);
    }
    const aegis = toAegisError(error instanceof HTTPException ? error.cause : error);
    if (aegis.code === "INTERNAL") {
      log(`internal error on ${c.req.method} ${c.req.path}: ${error.stack}`);
    }
    const status = aegis.httpStatus as 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503;
    return c.json({ error: aegis.toJSON() }, status);
  };
}
