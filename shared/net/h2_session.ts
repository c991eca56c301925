// One HTTP/2 client connection whose whole life this process owns: connect (with a deadline),
// keepalive PINGs, GOAWAY, death and close. connect-node's Http2SessionManager keeps timers that
// outlive a session Deno's node:http2 already destroyed (a stream's "close" re-arms the PING
// timer after the session was torn down, and the next PING throws "The session has been
// destroyed" from a timer, which kills the process). Here every timer and listener belongs to one
// `Link` record; each callback first checks whether its link has ended, every call into the
// session is guarded, and ending is idempotent and the only way out. A dead path is noticed by
// the keepalive (nothing read for `keepaliveMs`, then a PING unanswered for `keepaliveTimeoutMs`)
// even when no socket event ever arrives (a blackholed network), and the streams on it are
// failed with a clear UNAVAILABLE error at once.
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import type { GrpcTransportOptions } from "@connectrpc/connect-node";
import { deferGoawayReply } from "./h2_goaway.ts";

type SessionManager = NonNullable<GrpcTransportOptions["sessionManager"]>;

export interface H2SessionOptions {
  /** A PING goes out when nothing was read on a session with streams for this long. */
  keepaliveMs: number;
  /** A PING unanswered for this long ends the session and fails every stream on it. */
  keepaliveTimeoutMs: number;
  /** Connecting (TCP, TLS and the HTTP/2 preface) must finish within this. */
  connectTimeoutMs: number;
  /** A session without streams for this long is closed; the next request opens a new one. */
  idleCloseMs: number;
  /** PEM trust anchors added for TLS endpoints. */
  ca?: string;
  /**
   * The local (source) address to connect from; unset lets the OS choose. Benches spread a
   * simulated fleet over 127.0.0.0/8 with it, so ephemeral ports and per-address caps are not
   * what they measure.
   */
  localAddress?: string;
}

export const DEFAULT_H2_OPTIONS: H2SessionOptions = {
  // Well under the 60 s idle timeout common in load balancers, and a dead path is noticed within
  // keepaliveMs + keepaliveTimeoutMs = 30 s.
  keepaliveMs: 20_000,
  keepaliveTimeoutMs: 10_000,
  connectTimeoutMs: 15_000,
  idleCloseMs: 60_000,
};

/** Why a session ended: `broken` ones failed (the streams on them got `reason`). */
export interface SessionEnd {
  reason: ConnectError;
  broken: boolean;
}

interface Link {
  readonly session: http2.ClientHttp2Session;
  /** The connection under the session, ours to destroy (see #connect). */
  readonly socket: net.Socket;
  readonly streams: Set<http2.ClientHttp2Stream>;
  lastReadAt: number;
  idleSince: number;
  pingSentAt?: number;
  timer?: ReturnType<typeof setTimeout>;
  /** GOAWAY received: streams in flight finish, new requests open a new session. */
  draining: boolean;
  ended: boolean;
}

export class H2Session implements SessionManager {
  readonly authority: string;
  readonly #options: H2SessionOptions;
  readonly #listeners = new Set<(end: SessionEnd) => void>();
  #link?: Link;
  #connecting?: Promise<Link>;
  #abortConnect?: (reason: ConnectError) => void;
  #closed = false;
  /** Sessions opened so far (tests and soak checks read it). */
  opened = 0;

  constructor(baseUrl: string, options: Partial<H2SessionOptions> = {}) {
    this.authority = new URL(baseUrl).origin;
    this.#options = { ...DEFAULT_H2_OPTIONS, ...options };
  }

  /** Called whenever a session ends, with why. Returns a function that removes the listener. */
  onEnd(listener: (end: SessionEnd) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Live streams on the current session (0 when there is none). */
  get streams(): number {
    return this.#link?.streams.size ?? 0;
  }

  async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream> {
    // A session can die between being handed out and the request on it (nodejs/help#2105): one
    // retry on a fresh session, then the error stands.
    for (let attempt = 0;; attempt++) {
      const link = await this.#ready();
      try {
        const stream = link.session.request(
          { ...headers, ":method": method, ":path": path },
          options,
        );
        this.#track(link, stream);
        return stream;
      } catch (error) {
        const reason = asConnectError(error, "the HTTP/2 request failed");
        this.#end(link, reason, true);
        if (attempt >= 1) throw reason;
      }
    }
  }

  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void {
    const link = this.#link;
    if (link && !link.ended && link.streams.has(stream)) link.lastReadAt = Date.now();
  }

  /** Ends the current session (failing its streams with `reason`) without closing the manager. */
  reset(reason = unavailable("the connection was reset by the client")): void {
    if (this.#link) this.#end(this.#link, reason, true);
    this.#abortConnect?.(reason);
  }

  /** Ends everything; later requests fail with CANCELED. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new ConnectError("the client was closed", Code.Canceled);
    if (this.#link) this.#end(this.#link, reason, false);
    this.#abortConnect?.(reason);
    this.#listeners.clear();
  }

  #ready(): Promise<Link> {
    if (this.#closed) {
      return Promise.reject(new ConnectError("the client was closed", Code.Canceled));
    }
    const link = this.#link;
    if (link && !link.ended && !link.draining) {
      if (!link.session.destroyed && !link.session.closed) return Promise.resolve(link);
      this.#end(link, unavailable("the connection closed"), true);
    }
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
      this.#abortConnect = undefined;
    });
    return this.#connecting;
  }

  #connect(): Promise<Link> {
    return new Promise<Link>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      let socket: net.Socket;
      try {
        // The session runs on a socket of ours: destroying a session that is still connecting
        // leaves its own socket open in Deno 2.9 (SYN-SENT, a file descriptor, and a dead
        // connection the server accepts later). Ours is destroyed with the link, always.
        socket = openSocket(this.authority, this.#options);
        session = http2.connect(this.authority, { createConnection: () => socket });
      } catch (error) {
        reject(asConnectError(error, "connect failed"));
        return;
      }
      this.opened++;
      // Deno closes the session itself when a GOAWAY arrives, from inside nghttp2: deferred.
      deferGoawayReply(session);
      const now = Date.now();
      const link: Link = {
        session,
        socket,
        streams: new Set(),
        lastReadAt: now,
        idleSince: now,
        draining: false,
        ended: false,
      };
      let settled = false;
      const fail = (reason: ConnectError) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        this.#end(link, reason, false);
        reject(reason);
      };
      this.#abortConnect = fail;
      const deadline = setTimeout(
        () =>
          fail(unavailable(
            `no HTTP/2 connection within ${this.#options.connectTimeoutMs} ms`,
          )),
        this.#options.connectTimeoutMs,
      );
      // Listeners stay for the session's whole life and do nothing once the link ended, so no
      // late event of a dead session can throw (an "error" without a listener would).
      session.on("error", (error: Error) => {
        const reason = asConnectError(error, settled ? "the connection failed" : "connect failed");
        if (!settled) fail(reason);
        else this.#end(link, reason, true);
      });
      session.on("close", () => {
        const reason = unavailable("the connection closed");
        if (!settled) fail(reason);
        else this.#end(link, reason, true);
      });
      session.on("goaway", (errorCode: number) => {
        if (link.ended) return;
        link.draining = true;
        if (errorCode !== http2.constants.NGHTTP2_NO_ERROR || link.streams.size === 0) {
          this.#end(link, unavailable("the server closed the connection (GOAWAY)"), true);
        }
      });
      socket.on("error", (error: Error) => {
        const reason = asConnectError(error, settled ? "the connection failed" : "connect failed");
        if (!settled) fail(reason);
        else this.#end(link, reason, true);
      });
      socket.on("close", () => {
        if (!settled) fail(unavailable("the connection closed"));
        else this.#end(link, unavailable("the connection closed"), true);
      });
      session.once("connect", () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (this.#closed) {
          this.#end(link, new ConnectError("the client was closed", Code.Canceled), false);
          reject(new ConnectError("the client was closed", Code.Canceled));
          return;
        }
        this.#link = link;
        this.#unref(link);
        this.#schedule(link, this.#options.idleCloseMs);
        resolve(link);
      });
    });
  }

  #track(link: Link, stream: http2.ClientHttp2Stream): void {
    link.streams.add(stream);
    if (link.streams.size === 1) {
      this.#ref(link);
      link.lastReadAt = Date.now();
      this.#schedule(link, this.#options.keepaliveMs);
    }
    // connect-node listens for errors while it reads; this one keeps a stream error that arrives
    // after it stopped reading from becoming an uncaught exception.
    stream.on("error", () => {});
    stream.once("close", () => {
      if (!link.streams.delete(stream) || link.ended) return;
      if (link.streams.size > 0) return;
      if (link.draining) {
        this.#end(link, new ConnectError("drained after GOAWAY", Code.Canceled), false);
        return;
      }
      link.idleSince = Date.now();
      this.#unref(link);
      this.#schedule(link, this.#options.idleCloseMs);
    });
  }

  /** One timer per link drives keepalive and idle close; it re-arms itself and dies with the link. */
  #schedule(link: Link, ms: number): void {
    if (link.ended) return;
    clearTimeout(link.timer);
    const timer = setTimeout(() => this.#tick(link), Math.max(1, ms));
    Deno.unrefTimer(timer);
    link.timer = timer;
  }

  #tick(link: Link): void {
    if (link.ended) return;
    const { keepaliveMs, keepaliveTimeoutMs, idleCloseMs } = this.#options;
    const now = Date.now();
    if (link.pingSentAt !== undefined) {
      const waited = now - link.pingSentAt;
      if (waited >= keepaliveTimeoutMs) {
        this.#end(
          link,
          unavailable(
            `no answer to a keepalive PING within ${keepaliveTimeoutMs} ms (the path is dead)`,
          ),
          true,
        );
      } else {
        this.#schedule(link, keepaliveTimeoutMs - waited);
      }
      return;
    }
    if (link.streams.size === 0) {
      const idle = now - link.idleSince;
      if (idle >= idleCloseMs) this.#end(link, new ConnectError("idle", Code.Canceled), false);
      else this.#schedule(link, idleCloseMs - idle);
      return;
    }
    const quiet = now - link.lastReadAt;
    if (quiet < keepaliveMs) {
      this.#schedule(link, keepaliveMs - quiet);
      return;
    }
    this.#ping(link);
  }

  #ping(link: Link): void {
    link.pingSentAt = Date.now();
    try {
      const sent = link.session.ping((error) => {
        if (link.ended) return;
        link.pingSentAt = undefined;
        if (error) {
          this.#end(link, asConnectError(error, "the keepalive PING failed"), true);
          return;
        }
        link.lastReadAt = Date.now();
        this.#schedule(link, this.#options.keepaliveMs);
      });
      if (!sent) throw new Error("too many PINGs in flight");
    } catch (error) {
      this.#end(link, asConnectError(error, "the keepalive PING failed"), true);
      return;
    }
    this.#schedule(link, this.#options.keepaliveTimeoutMs);
  }

  /**
   * The only way a link ends. The bookkeeping is synchronous (no new request can pick the link);
   * the calls into the session and its streams wait one macrotask, because the event that got us
   * here (GOAWAY, a stream closing) may still be inside nghttp2's read of the frame, and Deno's
   * node:http2 aborts the process when the session is destroyed from there (the server side of
   * the same bug is handled in controller/server/listener.ts).
   */
  #end(link: Link, reason: ConnectError, broken: boolean): void {
    if (link.ended) return;
    link.ended = true;
    clearTimeout(link.timer);
    if (this.#link === link) this.#link = undefined;
    const streams = [...link.streams];
    link.streams.clear();
    const listeners = [...this.#listeners];
    setImmediate(() => {
      for (const stream of streams) {
        try {
          if (!stream.destroyed) stream.destroy(reason);
        } catch { /* already torn down by the runtime */ }
      }
      try {
        if (!link.session.destroyed) link.session.destroy();
      } catch { /* already torn down by the runtime */ }
      try {
        link.socket.destroy();
      } catch { /* already closed */ }
      for (const listener of listeners) {
        try {
          listener({ reason, broken });
        } catch { /* a listener's failure is its own */ }
      }
    });
  }

  #ref(link: Link): void {
    try {
      link.session.ref();
    } catch { /* destroyed */ }
  }

  #unref(link: Link): void {
    try {
      link.session.unref();
    } catch { /* destroyed */ }
  }
}

/** The TCP (or TLS, offering only h2 by ALPN) connection for `authority`. */
function openSocket(authority: string, options: H2SessionOptions): net.Socket {
  const url = new URL(authority);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const secure = url.protocol === "https:";
  const port = Number(url.port) || (secure ? 443 : 80);
  const local = options.localAddress ? { localAddress: options.localAddress } : {};
  if (!secure) return net.connect({ host, port, ...local });
  return tls.connect({
    host,
    port,
    ...local,
    ALPNProtocols: ["h2"],
    ...(net.isIP(host) ? {} : { servername: host }),
    ...(options.ca ? { ca: options.ca } : {}),
  });
}

function unavailable(message: string): ConnectError {
  return new ConnectError(message, Code.Unavailable);
}

/** Transport failures are UNAVAILABLE (worth a retry); the runtime's error is the cause, which
 * fromConnectError spells out with its code (ECONNREFUSED, ENOTFOUND, …). */
function asConnectError(error: unknown, context: string): ConnectError {
  if (error instanceof ConnectError) return error;
  return new ConnectError(context, Code.Unavailable, undefined, undefined, error);
}
