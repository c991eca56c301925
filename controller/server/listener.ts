// One TCP port for every protocol the controller speaks. Plaintext connections are sorted by
// their first bytes: the HTTP/2 connection preface goes to an h2c server (gRPC, gRPC-Web,
// Connect), anything else to an HTTP/1.1 server (REST, UI, Connect over HTTP/1.1). With TLS,
// ALPN does the sorting inside one secure HTTP/2 server that also allows HTTP/1.1.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface ListenOptions {
  host: string;
  port: number;
  handler: RequestHandler;
  tls?: TlsFiles;
  limits?: Limits;
}

export interface Listener {
  readonly port: number;
  readonly host: string;
  readonly tls: boolean;
  /** Stops accepting, then ends open sessions (streams included) after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export async function listen(options: ListenOptions): Promise<Listener> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  const track = (session: http2.Http2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    // A peer that vanishes mid-stream must not take the process down with it.
    session.on("error", () => {});
  };
  const firstStream = new FirstStreamDeadline(limits.h2_first_stream_timeout_ms);

  let server: net.Server;
  if (options.tls) {
    const secure = http2.createSecureServer({
      cert: options.tls.cert,
      key: options.tls.key,
      allowHTTP1: true,
      handshakeTimeout: limits.handshake_timeout_ms,
      ...h2Options(limits),
    }, options.handler);
    secure.on("session", track);
    // No first-stream deadline with TLS: in Deno 2.9 nothing (socket reset or destroy, TLS
    // socket, session close) ends an h2 connection once TLS has it; max_connections bounds them.
    server = secure;
  } else {
    const h2 = http2.createServer(h2Options(limits), options.handler);
    h2.on("session", track);
    h2.on("stream", (stream) => firstStream.seen(stream.session?.socket));
    const h1 = http.createServer(h1Options(limits), closeIfBodyUnread(options.handler));
    h1.keepAliveTimeout = 65_000;
    server = net.createServer((socket) =>
      routeByPreface(socket, h1, h2, limits.handshake_timeout_ms, firstStream)
    );
  }
  let connections = 0;
  const trackSocket = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  server.on("connection", (socket: net.Socket) => {
    // Beyond the cap a connection is closed on arrival rather than queued.
    if (connections >= limits.max_connections) {
      socket.destroy();
      return;
    }
    connections++;
    socket.once("close", () => connections--);
    trackSocket(socket);
  });
  // With TLS, the encrypted socket is a separate object that must be ended too.
  server.on("secureConnection", trackSocket);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  return {
    port: address.port,
    host: options.host,
    tls: Boolean(options.tls),
    async close(graceMs = 0) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // No HTTP/2 GOAWAY: daemons were already told to leave in-band, and Deno's nghttp2 client
      // can abort on a GOAWAY that races its own stream reset. Give them time, then cut.
      const deadline = Date.now() + graceMs;
      while (sessions.size > 0 && Date.now() < deadline) await delay(20);
      for (const socket of sockets) socket.destroy();
      // A connection that slipped past the tracking must not keep shutdown waiting for ever.
      await Promise.race([closed, delay(2000)]);
    },
  };
}

/**
 * A handler may answer without reading the body (a refused RPC, a 413). Node would discard the
 * rest; Deno's node:http parses it as the next request on the connection, so hang up instead.
 */
function closeIfBodyUnread(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    res.once("finish", () => {
      if (hasBody(req) && !req.readableEnded) req.socket?.destroy();
    });
    handler(req, res);
  };
}

function hasBody(req: { headers: http.IncomingHttpHeaders }): boolean {
  const length = Number(req.headers["content-length"] ?? 0);
  return length > 0 || req.headers["transfer-encoding"] !== undefined;
}

function h2Options(limits: Limits): http2.ServerOptions {
  return {
    settings: {
      maxConcurrentStreams: limits.h2_max_concurrent_streams,
      maxHeaderListSize: limits.max_header_bytes,
    },
    maxSessionMemory: limits.h2_max_session_memory_mb,
  };
}

function h1Options(limits: Limits): http.ServerOptions {
  return {
    maxHeaderSize: limits.max_header_bytes,
    headersTimeout: limits.headers_timeout_ms,
    requestTimeout: limits.request_timeout_ms,
    // How often the two timeouts above are checked (Node's default is every 30 s).
    connectionsCheckingInterval: Math.min(1000, limits.headers_timeout_ms),
  };
}

/**
 * An HTTP/2 connection that never opens a stream only holds memory and a descriptor, so it gets a
 * deadline. It is enforced on the socket: Deno's node:http2 does not close the socket on
 * session.destroy(), and refuses to let session.socket be destroyed.
 */
class FirstStreamDeadline {
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(readonly timeoutMs: number) {}

  expect(socket: net.Socket): void {
    const peer = peerOf(socket);
    // destroy() leaves a socket that node:http2 has taken over open in Deno; a reset closes it.
    const timer = setTimeout(() => socket.resetAndDestroy(), this.timeoutMs);
    this.#timers.set(peer, timer);
    socket.once("close", () => {
      clearTimeout(timer);
      if (this.#timers.get(peer) === timer) this.#timers.delete(peer);
    });
  }

  seen(socket: { remoteAddress?: string; remotePort?: number } | undefined): void {
    if (!socket) return;
    const peer = peerOf(socket);
    clearTimeout(this.#timers.get(peer));
    this.#timers.delete(peer);
  }
}

function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

function routeByPreface(
  socket: net.Socket,
  h1: http.Server,
  h2: http2.Http2Server,
  timeoutMs: number,
  firstStream: FirstStreamDeadline,
): void {
  let seen = Buffer.alloc(0);
  // A peer that sends nothing, or only part of the HTTP/2 preface, is not kept for ever.
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const compared = Math.min(seen.length, H2_PREFACE.length);
    const isH2 = seen.subarray(0, compared).equals(H2_PREFACE.subarray(0, compared));
    if (isH2 && seen.length < H2_PREFACE.length) return; // wait for the whole preface
    clearTimeout(timer);
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    if (isH2) firstStream.expect(socket);
    (isH2 ? h2 : h1).emit("connection", socket);
    socket.resume();
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
  socket.on("close", () => clearTimeout(timer));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
