// One TCP port for every protocol the controller speaks. Plaintext connections are sorted by
// their first bytes: the HTTP/2 connection preface goes to an h2c server (gRPC, gRPC-Web,
// Connect), anything else to an HTTP/1.1 server (REST, UI, Connect over HTTP/1.1). With TLS,
// ALPN does the sorting inside one secure HTTP/2 server that also allows HTTP/1.1.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";
import { addressBucket, ClientAddressResolver } from "./client_address.ts";
import { deferGoawayReply } from "../../shared/net/h2_goaway.ts";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** What the listener tells a raw stream handler about the stream's peer. */
export interface RawStreamPeer {
  /** The client's address (a trusted proxy's forwarding header resolved). */
  remoteAddr: string;
  /** Counts a body chunk against the unauthenticated budgets (call it for every chunk). */
  count(chunk: Uint8Array): void;
  /** As trustRequest: the stream authenticated; returns what to call when it is over. */
  trust(): () => void;
  /** Ends a misbehaving stream: its connection, or only the stream behind a trusted proxy. */
  cut(): void;
}

/**
 * An HTTP/2 route served on the raw stream, without the compat request and response objects
 * (the lean ConnectEdge path): `matches` picks its requests, `serve` answers them.
 */
export interface RawStreamRoute {
  matches(headers: http2.IncomingHttpHeaders): boolean;
  serve(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    peer: RawStreamPeer,
  ): void;
}

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
  /** Who a peer is, for the per-address bounds (trusted proxies and their headers). */
  clientAddress?: ClientAddressResolver;
  /** HTTP/2 requests served on the raw stream instead of `handler` (read at each request). */
  rawStreams?: () => RawStreamRoute | undefined;
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
  const resolver = options.clientAddress ?? new ClientAddressResolver();
  const sockets = new Set<net.Socket>();
  const sessions = new SessionWatch(limits);
  const bodies = new BodyGuard(limits, resolver, (session) => sessions.cut(session));
  const handler: RequestHandler = (req, res) => {
    if (req.httpVersionMajor === 2) {
      const h2req = req as http2.Http2ServerRequest;
      if (!bodies.watch(h2req)) return refuseBusy(h2req, res as http2.Http2ServerResponse);
    }
    options.handler(req, res);
  };

  let server: net.Server;
  let h2: http2.Http2Server | http2.Http2SecureServer;
  if (options.tls) {
    h2 = http2.createSecureServer({
      cert: options.tls.cert,
      key: options.tls.key,
      allowHTTP1: true,
      handshakeTimeout: limits.handshake_timeout_ms,
      ...h2Options(limits),
    }, handler);
    server = h2;
  } else {
    const plain = http2.createServer(h2Options(limits), handler);
    const h1 = http.createServer(h1Options(limits), closeIfBodyUnread(handler));
    h1.keepAliveTimeout = 65_000;
    server = net.createServer((socket) =>
      routeByPreface(socket, h1, plain, limits.handshake_timeout_ms)
    );
    listensThrough(h1, server);
    h2 = plain;
  }
  routeRawStreams(h2, (stream, headers) => {
    const route = options.rawStreams?.();
    if (!route?.matches(headers)) return false;
    const watch = bodies.watchStream(stream, headers);
    if (!watch.admitted) {
      refuseBusyStream(stream, headers);
      return true;
    }
    route.serve(stream, headers, {
      remoteAddr: resolver.resolve(stream.session?.socket?.remoteAddress, headers),
      count: watch.count,
      trust: () => {
        watch.release();
        return trustConnection(stream.session?.socket);
      },
      cut: () => bodies.cutStream(stream),
    });
    return true;
  });
  h2.on("session", (session: http2.ServerHttp2Session) => sessions.opened(session));
  h2.on("stream", (stream: http2.ServerHttp2Stream) => sessions.stream(stream));

  const connections = new ConnectionTable(limits, resolver);
  server.on("connection", (socket: net.Socket) => {
    // Beyond the caps a connection is closed on arrival rather than queued.
    if (!connections.admit(socket)) {
      socket.destroy();
      return;
    }
    // Small writes go out at once: a call's last event (or a stream's ack) written right after
    // another would otherwise wait for the peer's delayed ACK, about 40 ms (Nagle).
    socket.setNoDelay(true);
    sockets.add(socket);
    sessions.raw(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  // With TLS, the encrypted socket is a separate object that must be ended too.
  server.on("secureConnection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

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
      sessions.stop();
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

/** Lets a request's stream outlive the body deadline and leave the unauthenticated budget. */
const trustHooks = new WeakMap<object, () => void>();

/**
 * Connections by peer (address|port|local port), each with a hook that takes it out of its
 * address's count while it carries an authenticated stream (the hook returns the way back): a
 * connection with a live node stream is that node's, and many nodes behind one NAT must not be
 * locked out by a cap meant for anonymous peers. Only while the stream lives, so one node cannot
 * open connection after connection, authenticate on each, and hold them all uncounted: its older
 * streams are replaced (and end), and their connections count again.
 */
const connectionHooks = new Map<string, () => () => void>();

/**
 * Called once a stream has authenticated (a ConnectEdge Hello); harmless for anything else.
 * Returns what the handler calls when that authenticated stream is over (ended, replaced by a
 * newer one of the same node, revoked): its connection counts against its address again.
 */
export function trustRequest(req: object): () => void {
  trustHooks.get(req)?.();
  trustHooks.delete(req);
  return trustConnection((req as { socket?: net.Socket }).socket);
}

/** Takes the connection out of its address's count while an authenticated stream uses it. */
function trustConnection(socket: net.Socket | undefined): () => void {
  const trust = socket && connectionHooks.get(connectionKey(socket));
  return trust ? trust() : () => {};
}

/**
 * Puts `raw` in front of node:http2's compat layer: a stream it takes never gets the compat
 * request and response objects (about 10 KiB each stream); every other stream goes on to them
 * as before. The compat listener is the one node:http2 attached for the request handler.
 */
function routeRawStreams(
  server: http2.Http2Server | http2.Http2SecureServer,
  raw: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean,
): void {
  const compat = server.listeners("stream") as ((...args: unknown[]) => void)[];
  server.removeAllListeners("stream");
  server.on("stream", function (this: unknown, ...args: unknown[]) {
    const [stream, headers] = args as [http2.ServerHttp2Stream, http2.IncomingHttpHeaders];
    if (raw(stream, headers)) return;
    for (const listener of compat) listener.apply(this, args);
  });
}

function connectionKey(
  socket: { remoteAddress?: string; remotePort?: number; localPort?: number },
): string {
  return `${socket.remoteAddress}|${socket.remotePort}|${socket.localPort}`;
}

/** The least a body chunk is charged against the unauthenticated budgets, whatever its size. */
const MIN_CHUNK_COST = 512;

/** What one stream may hold past the global budget (any genuine unary request fits in it). */
const SMALL_BODY_BYTES = 64 * 1024;

/**
 * Bounds the request bodies of HTTP/2 streams that have not earned trust: each must arrive whole
 * within `h2_request_body_timeout_ms`, and the bytes they hold count against a per-address and a
 * global budget. A stream past either is reset, which frees what was buffered for it; so is one
 * whose response ended before its body did (a refused RPC).
 */
class BodyGuard {
  /** Requests per address whose body has not ended (and that have not authenticated). */
  readonly #requests = new Map<string, number>();
  readonly #perKey = new Map<string, number>();
  #total = 0;

  /** Past the Hello deadline: a ConnectEdge stream without a Hello gets UNAUTHENTICATED first. */
  readonly deadlineMs: number;

  constructor(
    readonly limits: Limits,
    readonly resolver: ClientAddressResolver,
    readonly cut: (session: http2.Http2Session | undefined) => void,
  ) {
    this.deadlineMs = Math.max(
      limits.h2_request_body_timeout_ms,
      limits.edge_auth_deadline_ms + 2000,
    );
  }

  /**
   * Starts watching a request; false when its address already has too many unfinished requests
   * (the caller refuses it, and its body is read and dropped). Twice that cuts the connection.
   */
  watch(req: http2.Http2ServerRequest): boolean {
    const stream = req.stream;
    if (!stream) return true;
    const watch = this.watchStream(stream, req.headers);
    // Counted where the body enters the request's buffer: listening for "data" on the stream
    // would start it flowing before the compat layer reads it, and lose the body.
    const push = req.push.bind(req);
    req.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (chunk instanceof Uint8Array) watch.count(chunk);
      return push(chunk, encoding);
    };
    // A stream answered before its body was read (a refused RPC) is left to the peer (clients
    // cancel it on the final status) or to the deadline above.
    trustHooks.set(req, watch.release);
    if (!watch.admitted) req.resume();
    return watch.admitted;
  }

  cutStream(stream: http2.ServerHttp2Stream): void {
    cutStreamOf(this.resolver, this.cut, stream);
  }

  /**
   * The same on a raw stream: whoever reads the body calls `count` with each chunk. Not
   * admitted: the caller refuses the request (and its body is read and dropped).
   */
  watchStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): StreamWatch {
    // No body at all (END_STREAM on the headers: a GET, which may stream a long response).
    if (stream.endAfterHeaders || bodyEnded(stream)) return UNWATCHED;
    const key = addressBucket(
      this.resolver.resolve(stream.session?.socket?.remoteAddress, headers),
    );
    const unfinished = (this.#requests.get(key) ?? 0) + 1;
    this.#requests.set(key, unfinished);
    const cap = this.limits.unauthenticated_requests_per_address;
    const admitted = unfinished <= cap;
    let held = 0;
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const requests = (this.#requests.get(key) ?? 1) - 1;
      if (requests > 0) this.#requests.set(key, requests);
      else this.#requests.delete(key);
      this.#total -= held;
      const left = (this.#perKey.get(key) ?? held) - held;
      if (left > 0) this.#perKey.set(key, left);
      else this.#perKey.delete(key);
    };
    const cut = () => {
      release();
      this.cutStream(stream);
    };
    const count = (chunk: Uint8Array) => {
      if (done || !admitted) return; // read and dropped, not kept
      // Each chunk costs the process more than its bytes (the chunk object, the frame that
      // brought it): a body sent one byte per DATA frame is charged what it really costs.
      const cost = Math.max(chunk.length, MIN_CHUNK_COST);
      held += cost;
      this.#total += cost;
      const mine = (this.#perKey.get(key) ?? 0) + cost;
      this.#perKey.set(key, mine);
      const overAddress = mine > this.limits.unauthenticated_body_bytes_per_address;
      const max = this.limits.unauthenticated_body_bytes_max;
      const overGlobal = this.#total > (held <= SMALL_BODY_BYTES ? 2 * max : max);
      if (overAddress || overGlobal) cut();
    };
    const timer = setTimeout(() => {
      if (!bodyEnded(stream)) cut();
      else release();
    }, this.deadlineMs);
    stream.once("end", release);
    stream.once("close", release);
    stream.on("error", () => {});
    if (unfinished > 2 * cap) cut();
    return { admitted, count, release };
  }
}

/**
 * Ends a misbehaving stream. Not with an RST_STREAM: in Deno 2.9, a peer's GOAWAY after we reset
 * its streams can abort the process inside nghttp2 (denoland/deno#36788). Cutting the whole
 * connection is safe, and a peer that holds a body past the deadline or over the budget, or
 * stops reading, deserves no better. Behind a trusted proxy one connection carries many clients
 * (every daemon and operator using it): only the offending client's stream is ended there.
 */
function cutStreamOf(
  resolver: ClientAddressResolver,
  cutSession: (session: http2.Http2Session | undefined) => void,
  stream: http2.ServerHttp2Stream,
): void {
  if (stream.closed || stream.destroyed) return;
  const viaProxy = resolver.isTrustedProxy(
    resolver.socketAddress(stream.session?.socket?.remoteAddress),
  );
  if (viaProxy) stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  else cutSession(stream.session);
}

interface StreamWatch {
  admitted: boolean;
  count(chunk: Uint8Array): void;
  release(): void;
}

const UNWATCHED: StreamWatch = { admitted: true, count: () => {}, release: () => {} };

/** The peer has sent its whole body (whether or not the handler has read it). */
function bodyEnded(stream: http2.Http2Stream): boolean {
  const state = (stream as { _readableState?: { ended?: boolean } })._readableState;
  return stream.readableEnded || state?.ended === true;
}

/**
 * Answers a request the guard turned away: a trailers-only gRPC RESOURCE_EXHAUSTED, or 429.
 * Each request in flight costs the process memory of its own (about 100 KiB in Deno 2.9) whatever
 * its body, so one address may not keep more than a bounded number of them unfinished.
 */
function refuseBusy(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
  const message = "too many unfinished requests from this address; retry later";
  try {
    if (String(req.headers["content-type"] ?? "").startsWith("application/grpc")) {
      res.writeHead(200, {
        "content-type": "application/grpc",
        "grpc-status": "8",
        "grpc-message": encodeURIComponent(message),
      });
    } else {
      res.writeHead(429, { "content-type": "text/plain" });
    }
    res.end();
  } catch { /* the stream is already gone */ }
}

/** refuseBusy for a raw stream: a trailers-only RESOURCE_EXHAUSTED; the body is dropped. */
function refuseBusyStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
  try {
    stream.respond({
      ":status": 200,
      "content-type": String(headers["content-type"] ?? "application/grpc"),
      "grpc-status": "8",
      "grpc-message": encodeURIComponent(
        "too many unfinished requests from this address; retry later",
      ),
    }, { endStream: true });
  } catch { /* the stream is already gone */ }
  stream.resume();
}

/**
 * Open TCP connections, in all and per socket address (IPv6: per /64). At the TCP level only the
 * socket address is known, so a trusted proxy's connections count in the total only, and so does
 * a connection once it carries an authenticated node stream. The last tenth of the total is kept
 * for addresses that have no connection yet.
 */
class ConnectionTable {
  readonly #perKey = new Map<string, number>();
  #total = 0;

  constructor(readonly limits: Limits, readonly resolver: ClientAddressResolver) {}

  admit(socket: net.Socket): boolean {
    const address = this.resolver.socketAddress(socket.remoteAddress);
    const proxy = this.resolver.isTrustedProxy(address);
    const key = addressBucket(address);
    const held = proxy ? 0 : this.#perKey.get(key) ?? 0;
    const max = this.limits.max_connections;
    if (this.#total >= max) return false;
    if (held >= this.limits.max_connections_per_address) return false;
    if (held > 0 && this.#total >= Math.floor(max * 0.9)) return false;
    this.#total++;
    if (!proxy) this.#perKey.set(key, held + 1);
    // Counted against its address while it carries no authenticated stream.
    let trustedStreams = 0;
    let closed = false;
    const add = (delta: number) => {
      if (proxy) return;
      const count = (this.#perKey.get(key) ?? 0) + delta;
      if (count > 0) this.#perKey.set(key, count);
      else this.#perKey.delete(key);
    };
    const trust = () => {
      let once = false;
      if (!closed && trustedStreams++ === 0) add(-1);
      return () => {
        if (once) return;
        once = true;
        if (!closed && --trustedStreams === 0) add(+1);
      };
    };
    const peer = connectionKey(socket);
    connectionHooks.set(peer, trust);
    socket.once("close", () => {
      this.#total--;
      if (trustedStreams === 0) add(-1);
      closed = true;
      if (connectionHooks.get(peer) === trust) connectionHooks.delete(peer);
    });
    return true;
  }
}

interface SessionState {
  streams: number;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * HTTP/2 sessions, plaintext and TLS: one that opens no stream within h2_first_stream_timeout_ms,
 * or has had none open for h2_idle_timeout_ms, is closed. session.destroy() alone leaves a
 * plaintext socket that we handed to node:http2 open in Deno 2.9, so the TCP socket underneath
 * (found by its peer address and port) is reset too.
 */
class SessionWatch {
  readonly #raw = new Map<string, net.Socket>();
  readonly #sessions = new Map<http2.Http2Session, SessionState>();
  #stopped = false;

  constructor(readonly limits: Limits) {}

  get size(): number {
    return this.#sessions.size;
  }

  raw(socket: net.Socket): void {
    const peer = peerOf(socket);
    this.#raw.set(peer, socket);
    socket.once("close", () => {
      if (this.#raw.get(peer) === socket) this.#raw.delete(peer);
    });
  }

  opened(session: http2.Http2Session): void {
    const state: SessionState = { streams: 0 };
    this.#sessions.set(session, state);
    // A peer that vanishes mid-stream must not take the process down with it.
    session.on("error", () => {});
    deferGoawayReply(session);
    session.once("close", () => {
      clearTimeout(state.timer);
      this.#sessions.delete(session);
    });
    this.#arm(session, state, this.limits.h2_first_stream_timeout_ms);
  }

  stream(stream: http2.ServerHttp2Stream): void {
    const session = stream.session;
    const state = session && this.#sessions.get(session);
    if (!session || !state) return;
    state.streams++;
    clearTimeout(state.timer);
    state.timer = undefined;
    stream.once("close", () => {
      state.streams--;
      if (state.streams === 0) this.#arm(session, state, this.limits.h2_idle_timeout_ms);
    });
  }

  /** Shutting down: the listener's own grace period takes over. */
  stop(): void {
    this.#stopped = true;
    for (const state of this.#sessions.values()) clearTimeout(state.timer);
  }

  #arm(session: http2.Http2Session, state: SessionState, ms: number): void {
    if (this.#stopped) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      if (state.streams === 0) this.cut(session);
    }, ms);
  }

  /**
   * Ends a session by resetting its TCP connection. No GOAWAY first: Deno's nghttp2 can abort
   * while closing streams on a GOAWAY (denoland/deno#36788). The session sees the socket close.
   */
  cut(session: http2.Http2Session | undefined): void {
    if (!session || session.destroyed) return;
    const raw = session.socket ? this.#raw.get(peerOf(session.socket)) : undefined;
    if (raw) raw.resetAndDestroy();
    else session.destroy();
  }
}

/**
 * The HTTP/1.1 server is handed its connections by the preface sniffer and never listens itself,
 * but Deno's node:http reads `listening` and the "listening" event: a server that is not listening
 * counts as shutting down, so it destroyed every connection right after its first response (while
 * that response still said `Connection: keep-alive`: a client reusing the pooled connection raced
 * the close and got a reset, or "connection closed before message completed"), and the timer that
 * enforces headers_timeout_ms and request_timeout_ms never started (a slow header block was kept
 * for ever). So it listens as long as the real listener does, and closes with it.
 */
function listensThrough(h1: http.Server, outer: net.Server): void {
  Object.defineProperty(h1, "listening", { configurable: true, get: () => outer.listening });
  outer.once("listening", () => h1.emit("listening"));
  // Drops idle kept-alive connections and stops the timeout checks; the callback takes the
  // "not running" error that closing a server with no socket of its own reports.
  outer.once("close", () => h1.close(() => {}));
}

/**
 * A handler may answer without reading the body (a refused RPC, a 401, a 413). Deno's node:http
 * does not reliably skip the rest of it (a large unread body stalls the connection), so such a
 * connection is not kept alive, and the response says so (`Connection: close`, after which
 * node:http ends the connection itself). Closing it without saying so, as this used to, let the
 * client pool a connection that was about to end: its next request raced the close and failed.
 */
function closeIfBodyUnread(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    if (!hasBody(req)) return handler(req, res);
    const h1res = res as http.ServerResponse;
    const writeHead = h1res.writeHead;
    h1res.writeHead = function (this: http.ServerResponse, ...args: unknown[]) {
      if (!req.readableEnded) this.shouldKeepAlive = false;
      return (writeHead as (...a: unknown[]) => http.ServerResponse).apply(this, args);
    } as typeof h1res.writeHead;
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

function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

function routeByPreface(
  socket: net.Socket,
  h1: http.Server,
  h2: http2.Http2Server,
  timeoutMs: number,
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
