// Floods of connections and streams that never authenticate, shared by the security tests.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { connectH2, h2Call, RPC } from "./wire.ts";

/**
 * The stream flood: many empty ConnectEdge streams over ten connections. Only a few may
 * be admitted (the per-address cap), and those must be ended by the Hello deadline.
 */
export async function unauthenticatedStreams(port: number): Promise<void> {
  const sessions = await Promise.all(Array.from({ length: 10 }, () => connectH2(port)));
  try {
    const replies = await Promise.all(sessions.flatMap((session) =>
      Array.from(
        { length: 200 },
        () => h2Call(session, RPC.connectEdge, { keepOpen: true, timeoutMs: 15_000 }),
      )
    ));
    const refused = replies.filter((r) => r.grpcStatus === 8).length;
    const timedOut = replies.filter((r) => r.grpcStatus === 16).length;
    const hanging = replies.filter((r) => r.error === "timeout").length;
    // Past twice limits.unauthenticated_requests_per_address unfinished requests from one
    // address, the server cuts the connection: those streams end without a status.
    const cut = replies.filter((r) => r.grpcStatus === undefined && r.error !== "timeout").length;
    console.log(
      `streams: ${refused} refused, ${cut} cut with their connection, ` +
        `${timedOut} ended by the Hello deadline`,
    );
    assert.equal(hanging, 0, `${hanging} unauthenticated streams were still open after 15 s`);
    assert.ok(refused + cut >= 1900, `only ${refused + cut} of 2000 streams were refused or cut`);
    assert.equal(refused + cut + timedOut, replies.length, JSON.stringify(replies.slice(-3)));
  } finally {
    for (const session of sessions) session.destroy();
  }
}

/** Sockets that send nothing, or half of the HTTP/2 preface, must be closed by the server. */
export async function halfOpenSockets(port: number): Promise<void> {
  const closedWithin = async (greeting: string) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    if (greeting) socket.write(greeting);
    const closed = new Promise((resolve) => socket.once("close", () => resolve(true)));
    const timer = new Promise((resolve) => setTimeout(() => resolve(false), 10_000));
    const ok = await Promise.race([closed, timer]);
    socket.destroy();
    return ok;
  };
  const results = await Promise.all([
    ...Array.from({ length: 50 }, () => closedWithin("PRI * HTTP/2.0\r\n")),
    ...Array.from({ length: 50 }, () => closedWithin("")),
    // A full preface, then nothing: an HTTP/2 session that never opens a stream.
    ...Array.from({ length: 20 }, () => closedWithin("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),
  ]);
  const open = results.filter((closed) => !closed).length;
  assert.equal(open, 0, `${open} idle or half-open sockets were still open after 10 s`);
}

export interface SlowBodyOptions {
  connections: number;
  streams: number;
  /** What each stream's gRPC frame claims; all but the last byte of it are sent. */
  declared?: number;
  path?: string;
  /** Bind the client sockets to this local address (127.0.0.0/8 on loopback). */
  localAddress?: string;
}

export interface SlowBodyAttack {
  /** Streams the server reset or answered, so far. */
  readonly ended: number;
  /** Connections the server closed, so far. */
  readonly closed: number;
  /** Bytes of body the client managed to hand to its sockets. */
  readonly sent: number;
  stop(): void;
}

/**
 * Finding 1 of the second review: on every stream a gRPC frame header that claims `declared`
 * bytes, then all but one of them, and the stream is never ended. Nothing about it is ever
 * complete, so a server that buffers request bodies without a deadline holds it all for ever.
 */
export async function slowBodies(port: number, options: SlowBodyOptions): Promise<SlowBodyAttack> {
  const declared = options.declared ?? 1024 * 1024;
  const body = new Uint8Array(declared - 1);
  const header = new Uint8Array(5);
  new DataView(header.buffer).setUint32(1, declared);
  let ended = 0;
  let closed = 0;
  let sent = 0;
  const sessions = await Promise.all(
    Array.from(
      { length: options.connections },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const session = http2.connect(`http://127.0.0.1:${port}`, {
            localAddress: options.localAddress,
            // The client must not be what limits the attack.
            settings: { initialWindowSize: 16 * 1024 * 1024 },
          } as http2.SecureClientSessionOptions);
          session.once("connect", () => resolve(session));
          session.once("error", reject);
          session.on("error", () => {});
          session.once("close", () => closed++);
        }),
    ),
  );
  for (const session of sessions) {
    for (let i = 0; i < options.streams; i++) {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request({
          ":method": "POST",
          ":path": options.path ?? RPC.attest,
          "content-type": "application/grpc",
          te: "trailers",
        });
      } catch {
        ended++;
        continue;
      }
      stream.on("error", () => {});
      stream.on("data", () => {});
      stream.once("close", () => ended++);
      stream.write(header);
      stream.write(body, () => sent += body.length);
    }
  }
  return {
    get ended() {
      return ended;
    },
    get closed() {
      return closed;
    },
    get sent() {
      return sent;
    },
    stop() {
      for (const session of sessions) session.destroy();
    },
  };
}
