// One TCP port for every protocol the controller speaks. Plaintext connections are sorted by
// their first bytes: the HTTP/2 connection preface goes to an h2c server (gRPC, gRPC-Web,
// Connect), anything else to an HTTP/1.1 server (REST, UI, Connect over HTTP/1.1). With TLS,
// ALPN does the sorting inside one secure HTTP/2 server that also allows HTTP/1.1.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";

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
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  const track = (session: http2.Http2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    // A peer that vanishes mid-stream must not take the process down with it.
    session.on("error", () => {});
  };

  let server: net.Server;
  if (options.tls) {
    const secure = http2.createSecureServer({
      cert: options.tls.cert,
      key: options.tls.key,
      allowHTTP1: true,
    }, options.handler);
    secure.on("session", track);
    server = secure;
  } else {
    const h2 = http2.createServer({}, options.handler);
    h2.on("session", track);
    const h1 = http.createServer(options.handler);
    h1.keepAliveTimeout = 65_000;
    server = net.createServer((socket) => routeByPreface(socket, h1, h2));
  }
  const trackSocket = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  server.on("connection", trackSocket);
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

function routeByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const compared = Math.min(seen.length, H2_PREFACE.length);
    const isH2 = seen.subarray(0, compared).equals(H2_PREFACE.subarray(0, compared));
    if (isH2 && seen.length < H2_PREFACE.length) return; // wait for the whole preface
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    (isH2 ? h2 : h1).emit("connection", socket);
    socket.resume();
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
