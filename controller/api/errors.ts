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
    const aegis = shownError(error instanceof HTTPException ? error.cause : error, c, log);
    const status = aegis.httpStatus as 400 | 401 | 403 | 404 | 409 | 429 | 500 | 503;
    // A limit that says when to come back says it the way HTTP clients read it too.
    const retryAfter = aegis.details.retry_after_secs;
    if (retryAfter && /^\d{1,9}$/.test(retryAfter)) c.header("Retry-After", retryAfter);
    return c.json({ error: aegis.toJSON() }, status);
  };
}

/**
 * An error that ends a streamed answer (an NDJSON `error` line), as the caller may see it: like
 * onApiError, an INTERNAL error's own words go to the log (the app's, set by createApi) only.
 */
export function streamedError(error: unknown, c: Context): Record<string, unknown> {
  const log = (c.get("log") as ((message: string) => void) | undefined) ??
    ((message: string) => console.error(message));
  return shownError(error, c, log).toJSON();
}

/**
 * The error as a caller may see it. An INTERNAL error's own words (a database's message, a
 * stack) stay in the log under a reference the caller is given; the log line quotes the path,
 * so a request cannot forge log lines with a newline in its URL.
 */
export function shownError(error: unknown, c: Context, log: (message: string) => void): AegisError {
  const aegis = toAegisError(error);
  if (aegis.code !== "INTERNAL") return aegis;
  const ref = crypto.randomUUID().slice(0, 8);
  const stack = error instanceof Error ? error.stack : String(error);
  log(`internal error ${ref} on ${c.req.method} ${JSON.stringify(c.req.path)}: ${stack}`);
  return new AegisError("INTERNAL", `internal error (logged as ${ref})`);
}

/** C0 controls and DEL: no path, id or filter of ours has them, and PostgreSQL refuses NUL. */
// deno-lint-ignore no-control-regex -- matching control characters is this pattern's whole job
const CONTROL = /[\x00-\x1f\x7f]/;

/** Refuses a request whose decoded path or query holds a control character, before any route. */
export function refuseControlCharacters(c: Context): void {
  let decoded: string;
  try {
    decoded = decodeURIComponent(new URL(c.req.url).pathname + new URL(c.req.url).search);
  } catch {
    throw new AegisError(
      "INVALID_ARGUMENT",
      "the request's URL is not valid UTF-8 percent-encoding",
    );
  }
  if (CONTROL.test(decoded)) {
    throw new AegisError("INVALID_ARGUMENT", "the request's URL holds a control character");
  }
}
