// An MCP client for tests of the controller's MCP endpoint: the official SDK's Client over its
// Streamable HTTP transport (nothing hand-rolled on the wire), speaking either protocol version,
// with the caller's bearer token and identity headers on every request, and every failure
// turned into one typed error that says what the server answered.
//
// What the SDK (2.4.0) does, read in its source and checked by mcp_client_test.ts:
// - 2026-07-28 (`versionNegotiation: { mode: { pin } }`): no `initialize`, no session, no GET
//   stream; connect() is a `server/discover` POST and every request carries its protocol version
//   in `_meta` and in the MCP-Protocol-Version header.
// - 2025-11-25 (the SDK's "legacy" mode with supportedProtocolVersions pinned to it): the
//   `initialize` handshake, then one POST per request.
// - Cancelling (aborting `signal`): on 2026-07-28 the SDK aborts that call's own POST, i.e. closes
//   its SSE response, and sends nothing else; the server sees the request's disconnect. On
//   2025-11-25 it leaves the POST open and sends `notifications/cancelled { requestId }` as a
//   separate POST: a server that serves each POST with a fresh instance (createMcpHandler's
//   stateless legacy leg) only cancels the call if it maps that notification to the running
//   request itself. Either way the SDK rejects the call with SdkError REQUEST_TIMEOUT; here it
//   becomes kind "cancelled". A timeout cancels the same way. (On 2026-07-28 the server has to
//   notice the closed connection: node:http does; Deno.serve did not always, see the test.)
// - An HTTP failure (401, 403...) surfaces from the SDK as SdkHttpError { status, text } without
//   the WWW-Authenticate header, or, for 403 insufficient_scope, as InsufficientScopeError
//   without a status; the fetch wrapper below keeps the header so tests can check the challenge.
import {
  type CallToolResult,
  Client,
  InsufficientScopeError,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  StreamableHTTPClientTransport,
  type Tool,
  UnauthorizedError,
} from "@modelcontextprotocol/client";
import { AegisError, ERROR_CODES, type ErrorCode } from "../../shared/errors.ts";

export const MCP_PROTOCOLS = ["2026-07-28", "2025-11-25"] as const;
export type McpProtocol = typeof MCP_PROTOCOLS[number];

/** Bounds on what a test hands in: far above any real use, low enough to catch a runaway. */
const MAX_TOKEN_CHARS = 16 * 1024;
const MAX_HEADERS = 32;
const MAX_HEADER_CHARS = 8 * 1024;
const MAX_ARGUMENTS_BYTES = 1024 * 1024;
/** The part of a tool's error text or an HTTP body that goes into an error message. */
const MAX_MESSAGE_CHARS = 2048;
const DEFAULT_TIMEOUT_MS = 60_000;

export interface McpConnectOptions {
  /** Sent as `Authorization: Bearer <token>` on every request (it replaces a headers entry). */
  token?: string;
  /** Extra headers on every request: X-Zaru-User-ID, X-Aegis-Session-Id... */
  headers?: Record<string, string>;
  /** Default 2026-07-28. */
  protocol?: McpProtocol;
  /** For the connect handshake. Default 60 s. */
  timeoutMs?: number;
}

export interface McpCallOptions {
  /** Each notifications/progress of this call, in order. */
  onProgress?: (progress: number, message?: string, total?: number) => void;
  /** Aborting it cancels the call (see the top of this file for what goes on the wire). */
  signal?: AbortSignal;
  /** Default 60 s. */
  timeoutMs?: number;
  /** Return a result with isError instead of throwing McpCallError kind "tool". */
  allowToolError?: boolean;
}

export interface McpSession {
  /** The protocol version the connection speaks. */
  readonly protocol: McpProtocol;
  listTools(): Promise<Tool[]>;
  callTool(
    name: string,
    args?: Record<string, unknown>,
    opts?: McpCallOptions,
  ): Promise<CallToolResult>;
  close(): Promise<void>;
}

export type McpFailureKind = "http" | "jsonrpc" | "tool" | "cancelled" | "timeout" | "transport";

/** Everything that can go wrong talking to an MCP endpoint, with what the server said. */
export class McpCallError extends AegisError {
  readonly kind: McpFailureKind;
  /** kind "http": the response status. */
  readonly responseStatus?: number;
  /** kind "http": the WWW-Authenticate challenge, when the server sent one. */
  readonly wwwAuthenticate?: string;
  /** kind "jsonrpc": the JSON-RPC error code (-32602...), and its data. */
  readonly rpcCode?: number;
  readonly rpcData?: unknown;
  /** kind "tool": the result the tool answered with isError. */
  readonly result?: CallToolResult;

  constructor(
    code: ErrorCode,
    message: string,
    fields: {
      kind: McpFailureKind;
      responseStatus?: number;
      wwwAuthenticate?: string;
      rpcCode?: number;
      rpcData?: unknown;
      result?: CallToolResult;
      cause?: unknown;
    },
  ) {
    const details: Record<string, string> = { kind: fields.kind };
    if (fields.responseStatus !== undefined) details.http_status = String(fields.responseStatus);
    if (fields.wwwAuthenticate !== undefined) details.www_authenticate = fields.wwwAuthenticate;
    if (fields.rpcCode !== undefined) details.rpc_code = String(fields.rpcCode);
    super(code, message, { details, cause: fields.cause });
    this.name = "McpCallError";
    this.kind = fields.kind;
    this.responseStatus = fields.responseStatus;
    this.wwwAuthenticate = fields.wwwAuthenticate;
    this.rpcCode = fields.rpcCode;
    this.rpcData = fields.rpcData;
    this.result = fields.result;
  }
}

interface HttpFailure {
  status: number;
  wwwAuthenticate?: string;
}

function checkInputs(url: string | URL, opts: McpConnectOptions): Record<string, string> {
  const bad = (message: string) => new AegisError("INVALID_ARGUMENT", message);
  const target = new URL(url);
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw bad(`an MCP endpoint is an http(s) URL, not ${target.protocol}`);
  }
  const headers = { ...opts.headers };
  if (Object.keys(headers).length > MAX_HEADERS) throw bad(`at most ${MAX_HEADERS} headers`);
  for (const [name, value] of Object.entries(headers)) {
    if (name.length + value.length > MAX_HEADER_CHARS) throw bad(`header ${name} is too long`);
  }
  if (opts.token !== undefined) {
    if (opts.token.length > MAX_TOKEN_CHARS) throw bad(`the token is over ${MAX_TOKEN_CHARS}`);
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() === "authorization") delete headers[name];
    }
    headers.authorization = `Bearer ${opts.token}`;
  }
  if (opts.protocol !== undefined && !MCP_PROTOCOLS.includes(opts.protocol)) {
    throw bad(`protocol must be one of ${MCP_PROTOCOLS.join(", ")}`);
  }
  return headers;
}

/** Connects (2026-07-28: server/discover; 2025-11-25: initialize) and returns the session. */
export async function connectMcp(
  url: string | URL,
  opts: McpConnectOptions = {},
): Promise<McpSession> {
  const headers = checkInputs(url, opts);
  const protocol = opts.protocol ?? "2026-07-28";
  // The SDK's errors drop the response headers; the last failing response's are kept here.
  // (Concurrent calls that fail differently could see each other's; tests do not do that.)
  let lastFailure: HttpFailure | undefined;
  const recordingFetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    // A 2025-11-25 client probes for the GET stream and a stateless server answers 405: that
    // refusal is part of a normal connect, not a failure worth reporting.
    const streamProbe = init?.method === "GET" && response.status === 405;
    if (!response.ok && !streamProbe) {
      lastFailure = {
        status: response.status,
        wwwAuthenticate: response.headers.get("www-authenticate") ?? undefined,
      };
    }
    return response;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers },
    fetch: recordingFetch,
  });
  const client = new Client(
    { name: "aegis-test-client", version: "1.0.0" },
    protocol === "2026-07-28"
      ? { versionNegotiation: { mode: { pin: "2026-07-28" } } }
      : { supportedProtocolVersions: ["2025-11-25"] },
  );
  const failure = (error: unknown, signal?: AbortSignal) =>
    mcpError(error, { failure: lastFailure, cancelled: signal?.aborted === true });
  try {
    lastFailure = undefined;
    await client.connect(transport, { timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  } catch (error) {
    await client.close().catch(() => {});
    throw failure(error);
  }
  const spoken = transport.protocolVersion;
  if (spoken !== protocol) {
    await client.close();
    throw new McpCallError("CONFLICT", `asked for MCP ${protocol}, the server speaks ${spoken}`, {
      kind: "jsonrpc",
    });
  }

  return {
    protocol,
    async listTools() {
      try {
        lastFailure = undefined;
        return (await client.listTools()).tools;
      } catch (error) {
        throw failure(error);
      }
    },
    async callTool(name, args = {}, call = {}) {
      const size = new TextEncoder().encode(JSON.stringify(args)).byteLength;
      if (size > MAX_ARGUMENTS_BYTES) {
        throw new AegisError("PAYLOAD_TOO_LARGE", `tool arguments are over ${MAX_ARGUMENTS_BYTES}`);
      }
      let result: CallToolResult;
      try {
        lastFailure = undefined;
        result = await client.callTool({ name, arguments: args }, {
          signal: call.signal,
          timeout: call.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          onprogress: call.onProgress &&
            ((p) => call.onProgress!(p.progress, p.message, p.total)),
        });
      } catch (error) {
        throw failure(error, call.signal);
      }
      if (result.isError && !call.allowToolError) {
        const text = result.content.flatMap((c) => c.type === "text" ? [c.text] : []).join("\n");
        const declared = (result.structuredContent as { code?: unknown } | undefined)?.code;
        throw new McpCallError(
          knownCode(declared) ?? "INTERNAL",
          `tool ${name} failed: ${text.slice(0, MAX_MESSAGE_CHARS)}`,
          { kind: "tool", result },
        );
      }
      return result;
    },
    async close() {
      await client.close();
    },
  };
}

function knownCode(value: unknown): ErrorCode | undefined {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value)
    ? value as ErrorCode
    : undefined;
}

const HTTP_CODES: Record<number, ErrorCode> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  429: "RATE_LIMITED",
  503: "UNREACHABLE",
};

/** One typed error for whatever the SDK threw. */
function mcpError(
  error: unknown,
  seen: { failure?: HttpFailure; cancelled: boolean },
): McpCallError {
  const message = (error as Error)?.message?.slice(0, MAX_MESSAGE_CHARS) ?? String(error);
  const http = (status: number, text: string) =>
    new McpCallError(HTTP_CODES[status] ?? "INTERNAL", `HTTP ${status}: ${text}`, {
      kind: "http",
      responseStatus: status,
      // Only when the failure seen on the wire is this one.
      wwwAuthenticate: seen.failure?.status === status ? seen.failure.wwwAuthenticate : undefined,
      cause: error,
    });
  if (error instanceof McpCallError) return error;
  if (error instanceof SdkHttpError) {
    return http(error.status, String(error.data.text ?? message).slice(0, MAX_MESSAGE_CHARS));
  }
  if (error instanceof InsufficientScopeError) {
    return http(403, `insufficient_scope (needs ${error.requiredScope ?? "?"})`);
  }
  if (error instanceof UnauthorizedError && seen.failure?.status === 401) {
    return http(401, message);
  }
  if (error instanceof ProtocolError) {
    const declared = (error.data as { code?: unknown } | undefined)?.code;
    return new McpCallError(knownCode(declared) ?? rpcErrorCode(error.code), message, {
      kind: "jsonrpc",
      rpcCode: error.code,
      rpcData: error.data,
      cause: error,
    });
  }
  if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) {
    // The SDK reports a caller's abort with the timeout's code; the signal tells them apart.
    return seen.cancelled
      ? new McpCallError("ABORTED", `cancelled: ${message}`, { kind: "cancelled", cause: error })
      : new McpCallError("TIMED_OUT", message, { kind: "timeout", cause: error });
  }
  if (seen.failure) return http(seen.failure.status, message);
  return new McpCallError("UNREACHABLE", message, { kind: "transport", cause: error });
}

function rpcErrorCode(code: number): ErrorCode {
  if (code === -32602 || code === -32600 || code === -32700) return "INVALID_ARGUMENT";
  if (code === -32601) return "NOT_FOUND";
  return "INTERNAL";
}
