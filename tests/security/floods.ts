// Floods of connections and streams that never authenticate, shared by the security tests.
import assert from "node:assert/strict";
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
    console.log(`streams: ${refused} refused, ${timedOut} ended by the Hello deadline`);
    assert.equal(hanging, 0, `${hanging} unauthenticated streams were still open after 15 s`);
    assert.ok(refused >= 1900, `only ${refused} of 2000 streams were refused`);
    assert.equal(refused + timedOut, replies.length, JSON.stringify(replies.slice(-3)));
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
