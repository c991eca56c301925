// The test MCP client against a real MCP server built here with the SDK's createMcpHandler and
// bearer-auth helpers, on loopback: both protocol versions, the bearer and identity headers on
// the wire, progress, cancellation as the server's handler sees it, and each kind of failure as
// one typed error.
//
// The server runs on node:http through @hono/node-server's getRequestListener, the stack the
// controller serves with. Not Deno.serve: under Deno.serve (Deno 2.9.6) a client that closes a
// pending POST on a fresh connection (how the SDK cancels on 2026-07-28) was not noticed by the
// server (its socket sat in CLOSE-WAIT, request.signal never fired), so the handler ran on;
// only a call on a reused keep-alive connection saw its abort. node:http sees every one.
import assert from "node:assert/strict";
import http from "node:http";
import { getRequestListener } from "@hono/node-server";
import * as z from "zod";
import {
  type AuthInfo,
  createMcpHandler,
  getOAuthProtectedResourceMetadataUrl,
  McpServer,
  OAuthError,
  OAuthErrorCode,
  requireBearerAuth,
} from "@modelcontextprotocol/server";
import { connectMcp, MCP_PROTOCOLS, McpCallError } from "./mcp_client.ts";

const GOOD_TOKEN = "token-with-scope";
const SCOPELESS_TOKEN = "token-without-scope";
const USER_ID = "3b1f6f0e-7c1e-4d5e-9a2b-0c9d8e7f6a5b";

interface SeenRequest {
  method: string;
  headers: Headers;
  /** The JSON-RPC method of a POST, when its body is one message. */
  rpcMethod?: string;
  rpcParams?: Record<string, unknown>;
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/**
 * An MCP server as the controller's endpoint will be: bearer tokens checked in front of the
 * handler (401/403 with a WWW-Authenticate challenge naming the resource metadata), the verified
 * AuthInfo passed through, and, for 2025-11-25, notifications/cancelled mapped onto the running
 * call (createMcpHandler serves each legacy POST with a fresh server instance, so the SDK alone
 * never connects the two).
 */
class TestServer {
  readonly seen: SeenRequest[] = [];
  /** Resolved when a wait_for_cancel call starts running, with its JSON-RPC id. */
  started = deferred<string | number>();
  /** Resolved with performance.now() when that call's abort signal fires. */
  aborted = deferred<number>();
  readonly #legacyCalls = new Map<string, AbortController>();
  readonly #server: http.Server;
  url!: URL;

  static async start(): Promise<TestServer> {
    const server = new TestServer();
    await new Promise<void>((resolve) => server.#server.listen(0, "127.0.0.1", resolve));
    const { port } = server.#server.address() as { port: number };
    server.url = new URL(`http://127.0.0.1:${port}/mcp`);
    return server;
  }

  private constructor() {
    const handler = createMcpHandler((ctx) => this.#mcpServer(ctx.era));
    this.#server = http.createServer(getRequestListener(async (req) => {
      const body = req.method === "POST" ? await req.clone().text() : "";
      const message = body.length < 64 * 1024 ? parseMessage(body) : undefined;
      this.seen.push({
        method: req.method,
        headers: req.headers,
        rpcMethod: message?.method,
        rpcParams: message?.params,
      });
      const auth = await this.#gate(req);
      if (auth instanceof Response) return auth;
      if (message?.method === "notifications/cancelled") {
        this.#legacyCalls.get(callKey(auth.token, message.params?.requestId))?.abort(
          new Error(`cancelled by the client: ${message.params?.reason}`),
        );
      }
      return await handler.fetch(req, { authInfo: auth });
    }));
  }

  get resourceMetadataUrl(): string {
    return getOAuthProtectedResourceMetadataUrl(this.url);
  }

  #gate = (req: Request) =>
    requireBearerAuth({
      verifier: {
        verifyAccessToken(token: string): Promise<AuthInfo> {
          const scopes = token === GOOD_TOKEN ? ["mcp"] : token === SCOPELESS_TOKEN ? [] : null;
          if (!scopes) {
            return Promise.reject(new OAuthError(OAuthErrorCode.InvalidToken, "unknown token"));
          }
          const expiresAt = Math.floor(Date.now() / 1000) + 300;
          return Promise.resolve({ token, clientId: "test", scopes, expiresAt });
        },
      },
      requiredScopes: ["mcp"],
      resourceMetadataUrl: this.resourceMetadataUrl,
    })(req);

  #mcpServer(era: "legacy" | "modern"): McpServer {
    const server = new McpServer({ name: "test-server", version: "1.0.0" });
    server.registerTool(
      "count",
      { description: "reports progress n times", inputSchema: z.object({ n: z.number().int() }) },
      async ({ n }, ctx) => {
        const progressToken = ctx.mcpReq._meta?.progressToken;
        for (let i = 1; i <= n && progressToken !== undefined; i++) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken, progress: i, total: n, message: `step ${i}` },
          });
        }
        return { content: [{ type: "text", text: `counted to ${n}` }] };
      },
    );
    server.registerTool("wait_for_cancel", { inputSchema: z.object({}) }, async (_args, ctx) => {
      const signals = [ctx.mcpReq.signal];
      const key = callKey(ctx.http?.authInfo?.token, ctx.mcpReq.id);
      if (era === "legacy") {
        const controller = new AbortController();
        this.#legacyCalls.set(key, controller);
        signals.push(controller.signal);
      }
      this.started.resolve(ctx.mcpReq.id);
      // Listeners on each signal itself: a combined AbortSignal.any() is held only weakly by
      // its sources, and a pending wait on it can be collected along with it.
      await new Promise<void>((resolve) => {
        for (const signal of signals) {
          if (signal.aborted) resolve();
          signal.addEventListener("abort", () => resolve(), { once: true });
        }
      });
      this.aborted.resolve(performance.now());
      this.#legacyCalls.delete(key);
      return { content: [{ type: "text", text: "cancelled" }] };
    });
    server.registerTool("whoami", { inputSchema: z.object({}) }, (_args, ctx) => ({
      content: [{ type: "text", text: "ok" }],
      structuredContent: {
        token: ctx.http?.authInfo?.token ?? null,
        user: ctx.http?.req?.headers.get("x-zaru-user-id") ?? null,
      },
    }));
    server.registerTool("refuse", { inputSchema: z.object({}) }, () => ({
      isError: true,
      content: [{ type: "text", text: "not allowed here" }],
      structuredContent: { code: "FORBIDDEN" },
    }));
    return server;
  }

  resetCall(): void {
    this.started = deferred();
    this.aborted = deferred();
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** Waits for `promise`, failing (rather than hanging the suite) when it takes over 10 s. */
async function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within 10 s`)), 10_000);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

function callKey(token: unknown, id: unknown): string {
  return `${String(token)}\n${String(id)}`;
}

function parseMessage(
  body: string,
): { method?: string; params?: Record<string, unknown> } | undefined {
  try {
    const message = JSON.parse(body);
    return typeof message === "object" && message !== null && !Array.isArray(message)
      ? message
      : undefined;
  } catch {
    return undefined;
  }
}

for (const protocol of MCP_PROTOCOLS) {
  Deno.test(`mcp client (${protocol}) against a createMcpHandler server`, async (t) => {
    const server = await TestServer.start();
    const sessionId = crypto.randomUUID();
    const mcp = await connectMcp(server.url, {
      token: GOOD_TOKEN,
      protocol,
      headers: { "X-Zaru-User-ID": USER_ID, "X-Aegis-Session-Id": sessionId },
    });
    try {
      assert.equal(mcp.protocol, protocol);

      await t.step("lists tools; bearer and identity headers ride on every request", async () => {
        const tools = await mcp.listTools();
        assert.deepEqual(tools.map((tool) => tool.name).sort(), [
          "count",
          "refuse",
          "wait_for_cancel",
          "whoami",
        ]);
        assert.equal(
          tools.find((tool) => tool.name === "count")?.description,
          "reports progress n times",
        );
        const who = await mcp.callTool("whoami");
        assert.deepEqual(who.structuredContent, { token: GOOD_TOKEN, user: USER_ID });
        const posts = server.seen.filter((r) => r.method === "POST");
        assert.ok(posts.length >= 3);
        for (const request of posts) {
          assert.equal(request.headers.get("authorization"), `Bearer ${GOOD_TOKEN}`);
          assert.equal(request.headers.get("x-zaru-user-id"), USER_ID);
          assert.equal(request.headers.get("x-aegis-session-id"), sessionId);
        }
        const calls = posts.filter((r) => r.rpcMethod === "tools/call");
        assert.ok(calls.every((r) => r.headers.get("mcp-protocol-version") === protocol));
        // How each version opens: 2026-07-28 has no initialize and no session.
        const opening = posts[0].rpcMethod;
        assert.equal(opening, protocol === "2026-07-28" ? "server/discover" : "initialize");
        assert.ok(posts.every((r) => r.headers.get("mcp-session-id") === null));
      });

      await t.step("progress notifications arrive in order before the result", async () => {
        const progress: Array<[number, string | undefined, number | undefined]> = [];
        const result = await mcp.callTool("count", { n: 3 }, {
          onProgress: (value, message, total) => progress.push([value, message, total]),
        });
        assert.deepEqual(progress, [[1, "step 1", 3], [2, "step 2", 3], [3, "step 3", 3]]);
        assert.deepEqual(result.content, [{ type: "text", text: "counted to 3" }]);
      });

      await t.step(
        "aborting the signal cancels the call; the handler sees it within 1 s",
        async () => {
          server.resetCall();
          const before = server.seen.length;
          const controller = new AbortController();
          const call = mcp.callTool("wait_for_cancel", {}, { signal: controller.signal });
          const requestId = await settles(server.started.promise, "the call's start");
          const abortedAt = performance.now();
          controller.abort(new Error("the user pressed stop"));
          await assert.rejects(call, (e: McpCallError) => {
            assert.ok(e instanceof McpCallError);
            assert.equal(e.kind, "cancelled");
            assert.equal(e.code, "ABORTED");
            return true;
          });
          const handlerSawAbort = await settles(server.aborted.promise, "the handler's abort");
          assert.ok(
            handlerSawAbort - abortedAt < 1000,
            `the handler saw the abort ${handlerSawAbort - abortedAt} ms later`,
          );
          const cancelled = server.seen.slice(before)
            .filter((r) => r.rpcMethod === "notifications/cancelled");
          if (protocol === "2026-07-28") {
            // The closed SSE response is the whole signal: nothing else is sent.
            assert.equal(cancelled.length, 0);
          } else {
            assert.equal(cancelled.length, 1);
            assert.equal(cancelled[0].rpcParams?.requestId, requestId);
          }
        },
      );

      await t.step("a call over its timeout fails as a timeout, not a cancel", async () => {
        server.resetCall();
        await assert.rejects(
          mcp.callTool("wait_for_cancel", {}, { timeoutMs: 300 }),
          (e: McpCallError) => e.kind === "timeout" && e.code === "TIMED_OUT",
        );
        // The SDK cancels a timed-out call too, so the handler is not left running.
        await settles(server.aborted.promise, "the timed-out handler's abort");
      });

      await t.step(
        "a tool's isError result is a typed error, or a result when allowed",
        async () => {
          await assert.rejects(mcp.callTool("refuse"), (e: McpCallError) => {
            assert.equal(e.kind, "tool");
            assert.equal(e.code, "FORBIDDEN");
            assert.match(e.message, /not allowed here/);
            assert.equal(e.result?.isError, true);
            return true;
          });
          const result = await mcp.callTool("refuse", {}, { allowToolError: true });
          assert.equal(result.isError, true);
        },
      );

      await t.step("JSON-RPC errors carry their code", async () => {
        await assert.rejects(mcp.callTool("no_such_tool"), (e: McpCallError) => {
          assert.equal(e.kind, "jsonrpc");
          assert.equal(e.rpcCode, -32602);
          assert.match(e.message, /no_such_tool/);
          return true;
        });
        await assert.rejects(mcp.callTool("count", { n: "three" }), (e: McpCallError) => {
          // Arguments that fail the input schema: an isError result on both versions.
          assert.equal(e.kind, "tool");
          assert.match(e.message, /n/);
          return true;
        });
      });

      await t.step(
        "401: an unknown token, with the challenge naming the resource metadata",
        async () => {
          await assert.rejects(
            connectMcp(server.url, { token: "forged", protocol }),
            (e: McpCallError) => {
              assert.equal(e.kind, "http");
              assert.equal(e.responseStatus, 401);
              assert.equal(e.code, "UNAUTHENTICATED");
              assert.match(e.wwwAuthenticate ?? "", /^Bearer /);
              assert.match(e.wwwAuthenticate ?? "", /error="invalid_token"/);
              assert.ok(
                e.wwwAuthenticate?.includes(`resource_metadata="${server.resourceMetadataUrl}"`),
              );
              return true;
            },
          );
          await assert.rejects(
            connectMcp(server.url, { protocol }),
            (e: McpCallError) => e.responseStatus === 401,
          );
        },
      );

      await t.step("403: a token without the scope", async () => {
        await assert.rejects(
          connectMcp(server.url, { token: SCOPELESS_TOKEN, protocol }),
          (e: McpCallError) => {
            assert.equal(e.kind, "http");
            assert.equal(e.responseStatus, 403);
            assert.equal(e.code, "FORBIDDEN");
            assert.match(e.wwwAuthenticate ?? "", /error="insufficient_scope"/);
            return true;
          },
        );
      });
    } finally {
      await mcp.close();
      await server.close();
    }
  });
}

Deno.test("mcp client: an endpoint that is not there is a transport error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    connectMcp(`http://127.0.0.1:${port}/mcp`, { token: GOOD_TOKEN }),
    (e: McpCallError) => e.kind === "transport" && e.code === "UNREACHABLE",
  );
});

Deno.test("mcp client: inputs are bounded", async () => {
  await assert.rejects(
    connectMcp("http://127.0.0.1:1/mcp", { token: "x".repeat(20_000) }),
    (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT",
  );
  await assert.rejects(
    connectMcp("file:///etc/passwd"),
    (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT",
  );
});
