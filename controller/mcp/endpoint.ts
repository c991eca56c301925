// The MCP endpoint on the controller's port: /mcp/v1 (and /mcp/v1/sse, the path older clients
// are configured with), Streamable HTTP served by the official SDK, per request (protocol
// 2026-07-28, and 2025-11-25 clients through the SDK's stateless fallback). Each request is
// authenticated here, before the SDK sees it: a bearer token of either kind (our own operator
// tokens included, so the embedded default needs no identity provider), identity headers that
// must agree with it, and a 401 that points at the protected-resource metadata document.
//
// Cancellation: a 2026-07-28 client cancels by closing the request's response, which aborts the
// tool's signal. A 2025-11-25 client sends notifications/cancelled as a separate POST, which the
// stateless fallback would hand to a fresh server that knows nothing of the call; such a
// notification is matched here to the caller's call in flight and aborts it.
import { Hono } from "hono";
import type { Context } from "hono";
import { createMcpHandler } from "@modelcontextprotocol/server";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import { checkIdentityHeaders, type Principal } from "../app/identity.ts";
import type { TokenAuthority } from "../app/tokens.ts";
import { bearerToken } from "../api/auth.ts";
import { buildServer, type McpCaller, type McpToolDeps } from "./tools.ts";

export const MCP_PATHS = ["/mcp/v1", "/mcp/v1/sse"] as const;
const METADATA_PREFIX = "/.well-known/oauth-protected-resource";
/** Calls in flight one identity may have at once (each holds a stream and a map entry). */
export const MAX_CALLS_PER_CALLER = 64;
/** Calls in flight on this process, all callers together. */
export const MAX_CALLS = 4_096;

export interface McpEndpointDeps extends McpToolDeps {
  tokens: TokenAuthority;
  /** The URL clients reach this controller at (bootstrap.public_url), when configured. */
  publicUrl?: string;
  /** Authorization servers (external issuers) the metadata document names. */
  authorizationServers: string[];
  maxBodyBytes: number;
  log: (message: string) => void;
}

type McpCallerWithCancel = McpCaller & { cancel: AbortSignal; done: () => void };

export function mountMcp(app: Hono, deps: McpEndpointDeps): void {
  const inFlight = new InFlightCalls();
  const handler = createMcpHandler(
    (ctx) => {
      const caller = ctx.authInfo?.extra?.caller as McpCallerWithCancel | undefined;
      if (!caller) throw new AegisError("UNAUTHENTICATED", "no caller");
      return buildServer(deps, caller);
    },
    {
      legacy: "stateless",
      maxRequestBodySize: deps.maxBodyBytes,
      onerror: (error) => deps.log(`mcp: ${error.message}`),
    },
  );

  for (const path of MCP_PATHS) {
    app.get(`${METADATA_PREFIX}${path}`, (c) => c.json(resourceMetadata(c, deps, path)));
    app.on(["POST", "GET"], path, async (c) => {
      const caller = await authenticate(c, deps, path);
      if (caller instanceof Response) return caller;
      if (c.req.method === "GET") return await handler.fetch(c.req.raw);
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return jsonRpcError(null, -32700, "the request body is not JSON");
      }
      const message = body as { id?: unknown; method?: unknown; params?: { requestId?: unknown } };
      if (message?.method === "notifications/cancelled") {
        // A 2025-11-25 client's cancellation of one of its calls in flight (see above).
        inFlight.cancel(caller.principal, caller.sessionId, message.params?.requestId);
        return c.body(null, 202);
      }
      const cancel = new AbortController();
      let release = () => {};
      if (message?.method === "tools/call" && message.id !== undefined) {
        release = inFlight.add(caller.principal, caller.sessionId, message.id, cancel);
      }
      // The caller's connection going away aborts the call, whatever the runtime does with the
      // request's own signal.
      const outgoing = (c.env as { outgoing?: { once(e: string, f: () => void): void } })
        ?.outgoing;
      outgoing?.once("close", () => cancel.abort());
      const withCancel: McpCallerWithCancel = { ...caller, cancel: cancel.signal, done: release };
      try {
        return await handler.fetch(c.req.raw, {
          parsedBody: body,
          authInfo: {
            // The SDK never needs the token itself: the caller was verified above.
            token: "[redacted]",
            clientId: caller.principal.sub,
            scopes: [],
            expiresAt: caller.principal.exp,
            extra: { caller: withCancel },
          },
        });
      } catch (error) {
        release();
        throw error;
      }
    });
    // A conversation ends: its running executions are cancelled (remote processes included).
    app.delete(path, async (c) => {
      const caller = await authenticate(c, deps, path);
      if (caller instanceof Response) return caller;
      if (!caller.sessionId) {
        return c.json({
          error: {
            code: "INVALID_ARGUMENT",
            message: "name the session to end (X-Aegis-Session-Id or Mcp-Session-Id)",
          },
        }, 400);
      }
      const cancelled = await deps.executions.endSession(caller.principal, caller.sessionId);
      return c.json({ session_ended: true, cancelled });
    });
  }
}

/** The caller of an MCP request, or the 401/403 answer an MCP client understands. */
async function authenticate(
  c: Context,
  deps: McpEndpointDeps,
  path: string,
): Promise<McpCaller | Response> {
  const origin = c.req.header("origin");
  if (origin !== undefined && origin !== ownOrigin(c, deps)) {
    // A browser page of another site (DNS rebinding, a malicious tab) is not a client of ours.
    return c.json({
      error: { code: "FORBIDDEN", message: "cross-origin MCP requests are refused" },
    }, 403);
  }
  const metadataUrl = `${ownOrigin(c, deps)}${METADATA_PREFIX}${path}`;
  const challenge = (status: 401 | 403, error: AegisError) => {
    const params = status === 401
      ? `error="invalid_token", error_description="${quoted(error.message)}", `
      : `error="insufficient_scope", error_description="${quoted(error.message)}", `;
    c.header("WWW-Authenticate", `Bearer ${params}resource_metadata="${metadataUrl}"`);
    return c.json({ error: error.toJSON() }, status);
  };
  const token = bearerToken(c.req.header("authorization"));
  if (!token) {
    c.header("WWW-Authenticate", `Bearer resource_metadata="${metadataUrl}"`);
    return c.json({
      error: { code: "UNAUTHENTICATED", message: "missing Authorization: Bearer <token>" },
    }, 401);
  }
  let principal: Principal;
  try {
    principal = await deps.tokens.verifyPrincipal(token);
    checkIdentityHeaders(principal, {
      userId: c.req.header("x-zaru-user-id"),
      tier: c.req.header("x-zaru-tier"),
    });
  } catch (error) {
    const aegis = toAegisError(error);
    if (aegis.code === "INTERNAL" || aegis.code === "UNREACHABLE") throw error;
    return challenge(aegis.httpStatus === 403 ? 403 : 401, aegis);
  }
  const sessionId = c.req.header("x-aegis-session-id")?.trim() ||
    c.req.header("mcp-session-id")?.trim() || undefined;
  return { principal, ...(sessionId ? { sessionId } : {}) };
}

/** RFC 9728: what this resource is and who issues tokens for it. */
function resourceMetadata(c: Context, deps: McpEndpointDeps, path: string) {
  return {
    resource: `${ownOrigin(c, deps)}${path}`,
    ...(deps.authorizationServers.length
      ? { authorization_servers: deps.authorizationServers }
      : {}),
    bearer_methods_supported: ["header"],
    resource_name: "AEGIS Edge controller",
  };
}

function ownOrigin(c: Context, deps: McpEndpointDeps): string {
  if (deps.publicUrl) return new URL(deps.publicUrl).origin;
  return new URL(c.req.url).origin;
}

/** Text fit for a quoted-string of a WWW-Authenticate parameter. */
function quoted(text: string): string {
  // Printable ASCII only: a header value carries no control characters, and a backslash would
  // start an escape.
  return text.replace(/"/g, "'").replace(/[^\x20-\x7e]|\\/g, " ").slice(0, 200);
}

function jsonRpcError(id: unknown, code: number, message: string): Response {
  return Response.json({ jsonrpc: "2.0", id, error: { code, message } }, { status: 400 });
}

/**
 * Tool calls in flight, by caller and JSON-RPC id, so a 2025-11-25 client's
 * notifications/cancelled reaches the call it names. Bounded per caller and in all.
 */
class InFlightCalls {
  readonly #calls = new Map<string, AbortController>();
  readonly #perCaller = new Map<string, number>();

  add(principal: Principal, sessionId: string | undefined, id: unknown, abort: AbortController) {
    const who = callerKey(principal);
    const count = this.#perCaller.get(who) ?? 0;
    if (count >= MAX_CALLS_PER_CALLER || this.#calls.size >= MAX_CALLS) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many MCP tool calls in flight (at most ${MAX_CALLS_PER_CALLER} per caller)`,
        { details: { retry_after_secs: "5" } },
      );
    }
    const key = `${who}\n${sessionId ?? ""}\n${JSON.stringify(id)}`;
    this.#calls.get(key)?.abort(); // a client reusing an id in flight: the older call ends
    this.#calls.set(key, abort);
    this.#perCaller.set(who, count + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (this.#calls.get(key) === abort) this.#calls.delete(key);
      const left = (this.#perCaller.get(who) ?? 1) - 1;
      if (left <= 0) this.#perCaller.delete(who);
      else this.#perCaller.set(who, left);
    };
    abort.signal.addEventListener("abort", release, { once: true });
    return release;
  }

  cancel(principal: Principal, sessionId: string | undefined, id: unknown): void {
    if (id === undefined) return;
    const key = `${callerKey(principal)}\n${sessionId ?? ""}\n${JSON.stringify(id)}`;
    this.#calls.get(key)?.abort();
  }
}

function callerKey(principal: Principal): string {
  return `${principal.iss}\n${principal.sub}`;
}
