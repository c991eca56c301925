// The console's sessions on the wire: the cookie, the middleware every page goes through, and the
// CSRF check every change goes through. The cookie is HttpOnly (no script reads it), SameSite=Strict
// (no other site's page sends it) and scoped to /console; a change must also carry the session's
// CSRF token (a form field or the X-CSRF-Token header htmx sends) and come from this origin.
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { AegisError } from "../../shared/errors.ts";
import { constantTimeEqual, utf8 } from "../../shared/crypto/encoding.ts";
import type {
  ConsoleSession,
  ConsoleSessions,
  NewConsoleSession,
} from "../app/console_sessions.ts";
import type { Operator } from "../app/operators.ts";

export const SESSION_COOKIE = "aegis_console";
export const CONSOLE_PATH = "/console";

export type ConsoleEnv = {
  Variables: {
    operator: Operator;
    session: ConsoleSession;
    csrf: string;
    /** The TCP peer is one of cluster.ingress.trusted_proxies (set for every console request). */
    viaTrustedProxy: boolean;
  };
};

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * A forwarding header, believed only from a configured trusted proxy: anyone else could say
 * anything (a Secure cookie over plain http, another host to compare Origin with).
 */
function forwarded(c: Context, name: "x-forwarded-proto" | "x-forwarded-host"): string | undefined {
  if (!c.get("viaTrustedProxy")) return undefined;
  return c.req.header(name)?.split(",")[0].trim() || undefined;
}

/** The scheme and host the browser used to reach the console (behind a trusted proxy: its view). */
export function ownOrigin(c: Context): { protocol: "http:" | "https:"; host: string } {
  const url = new URL(c.req.url);
  const proto = forwarded(c, "x-forwarded-proto");
  const protocol = proto === "https" || (proto === undefined && url.protocol === "https:")
    ? "https:"
    : "http:";
  return { protocol, host: forwarded(c, "x-forwarded-host") ?? c.req.header("host") ?? url.host };
}

function isHttps(c: Context): boolean {
  return ownOrigin(c).protocol === "https:";
}

export function setSessionCookie(c: Context, session: NewConsoleSession): void {
  setCookie(c, SESSION_COOKIE, session.id, {
    path: CONSOLE_PATH,
    httpOnly: true,
    sameSite: "Strict",
    secure: isHttps(c),
    expires: session.expiresAt,
  });
}

export function sessionId(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

export function clearSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH, secure: isHttps(c) });
}

/**
 * A change must come from a page of this console: the browser's own Origin / Sec-Fetch-Site say
 * where the request was made, and no other site can make a browser lie about them.
 */
export function requireSameOrigin(c: Context): void {
  const site = c.req.header("sec-fetch-site");
  if (site && site !== "same-origin" && site !== "none") {
    throw new AegisError("FORBIDDEN", "a change to the console must come from the console itself");
  }
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch { /* "null" or junk */ }
    if (host === undefined || host !== ownOrigin(c).host) {
      throw new AegisError(
        "FORBIDDEN",
        "a change to the console must come from the console itself",
      );
    }
  }
}

/** The session's CSRF token, from the header htmx and console.js send or a form field. */
async function presentedCsrf(c: Context): Promise<string> {
  const header = c.req.header("x-csrf-token");
  if (header) return header;
  const type = c.req.header("content-type") ?? "";
  if (type.startsWith("application/x-www-form-urlencoded") || type.startsWith("multipart/")) {
    const form = await c.req.parseBody();
    const value = form["_csrf"];
    return typeof value === "string" ? value : "";
  }
  return "";
}

/**
 * Every page behind sign-in: a browser without a live session is sent to the sign-in page (an
 * htmx request is told to go there), a change without this session's CSRF token is refused.
 */
export function requireSession(sessions: ConsoleSessions) {
  return createMiddleware<ConsoleEnv>(async (c, next) => {
    const session = await sessions.find(sessionId(c));
    if (!session) {
      if (UNSAFE.has(c.req.method) || c.req.header("hx-request")) {
        c.header("HX-Redirect", `${CONSOLE_PATH}/login`);
        throw new AegisError("UNAUTHENTICATED", "your console session ended; sign in again");
      }
      const back = c.req.path + (new URL(c.req.url).search || "");
      return c.redirect(`${CONSOLE_PATH}/login?next=${encodeURIComponent(back)}`, 303);
    }
    if (UNSAFE.has(c.req.method)) {
      requireSameOrigin(c);
      const presented = await presentedCsrf(c);
      if (!constantTimeEqual(utf8(presented), utf8(session.csrf))) {
        throw new AegisError("FORBIDDEN", "the request's CSRF token does not match your session", {
          hint: "Reload the page and try again.",
        });
      }
    }
    c.set("session", session);
    c.set("operator", session.operator);
    c.set("csrf", session.csrf);
    await next();
  });
}

/** Where to go after signing in: only a path inside the console, never another site. */
export function safeNext(next: string | undefined): string {
  // Printable ASCII only (a CR/LF would break the Location header), a path inside the console.
  if (
    next && next.length <= 2048 && /^[\x21-\x7e]+$/.test(next) &&
    next.startsWith(`${CONSOLE_PATH}/`) && !next.startsWith("//") && !next.includes("\\")
  ) {
    return next;
  }
  return `${CONSOLE_PATH}/`;
}
