import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { H2Session, type SessionEnd } from "./h2_session.ts";
import { deferGoawayReply } from "./h2_goaway.ts";

/** An h2c server whose /hold stream sends one chunk and never ends; /echo answers at once. */
async function h2Server(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    // As our listener does: Deno 2.9 may abort when it answers a GOAWAY inside nghttp2.
    deferGoawayReply(s);
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    stream.respond({ ":status": 200 });
    if (headers[":path"] === "/hold") stream.write("x");
    else stream.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A TCP relay in front of `target` that can stop forwarding (a blackhole) or cut every link. */
function relay(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const links = new Set<Deno.Conn>();
  let holing = false;
  (async () => {
    for await (const inbound of listener) {
      const outbound = await Deno.connect({ hostname: "127.0.0.1", port: target });
      links.add(inbound).add(outbound);
      const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
        const buffer = new Uint8Array(16 * 1024);
        try {
          while (true) {
            const n = await from.read(buffer);
            if (n === null) break;
            if (!holing) await to.write(buffer.subarray(0, n));
          }
        } catch { /* cut */ }
        for (const c of [from, to]) {
          try {
            c.close();
          } catch { /* closed */ }
          links.delete(c);
        }
      };
      void pipe(inbound, outbound);
      void pipe(outbound, inbound);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    blackhole: () => holing = true,
    cut() {
      for (const c of links) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      links.clear();
    },
    close() {
      this.cut();
      listener.close();
    },
  };
}

function read(stream: http2.ClientHttp2Stream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    stream.on("data", (chunk) => text += chunk);
    stream.on("end", () => resolve(text));
    stream.on("error", reject);
  });
}

const fast = { keepaliveMs: 200, keepaliveTimeoutMs: 300, connectTimeoutMs: 2000 };

Deno.test("a blackholed path is noticed by the keepalive and the stream fails UNAVAILABLE", async () => {
  const server = await h2Server();
  const path = relay(server.port);
  const session = new H2Session(`http://127.0.0.1:${path.port}`, fast);
  const ends: SessionEnd[] = [];
  session.onEnd((end) => ends.push(end));
  try {
    const stream = await session.request("GET", "/hold", {}, {});
    const failed = new Promise<unknown>((resolve) => stream.on("error", resolve));
    await new Promise((resolve) => stream.once("data", resolve));
    const start = Date.now();
    path.blackhole();
    const error = await failed;
    const took = Date.now() - start;
    assert.ok(error instanceof ConnectError && error.code === Code.Unavailable, String(error));
    assert.match((error as ConnectError).rawMessage, /keepalive PING/);
    assert.ok(took < 200 + 300 + 400, `noticed after ${took} ms`);
    assert.equal(ends.length, 1);
    assert.equal(ends[0].broken, true);
  } finally {
    session.close();
    path.close();
    await server.close();
  }
});

Deno.test("a session cut under a live stream leaves no timer that can throw, and the next request reconnects", async () => {
  const server = await h2Server();
  const path = relay(server.port);
  const session = new H2Session(`http://127.0.0.1:${path.port}`, fast);
  try {
    const stream = await session.request("GET", "/hold", {}, {});
    const failed = new Promise<unknown>((resolve) =>
      stream.on("error", resolve).on("close", resolve)
    );
    await new Promise((resolve) => stream.once("data", resolve));
    path.cut();
    await failed;
    // Several keepalive periods pass on the dead session: the process must not see an uncaught
    // "The session has been destroyed" (Deno's test runner fails the test if it does).
    await new Promise((resolve) => setTimeout(resolve, 5 * fast.keepaliveMs));
    assert.equal(await read(await session.request("GET", "/echo", {}, {})), "ok");
    assert.equal(session.opened, 2);
  } finally {
    session.close();
    path.close();
    await server.close();
  }
});

Deno.test("a refused connect fails UNAVAILABLE with the cause; close() ends later requests", async () => {
  const server = await h2Server();
  const port = server.port;
  await server.close();
  const session = new H2Session(`http://127.0.0.1:${port}`, fast);
  await assert.rejects(session.request("GET", "/echo", {}, {}), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.Unavailable);
    assert.match(String((error.cause as Error)?.message), /ECONNREFUSED|refused/i);
    return true;
  });
  session.close();
  await assert.rejects(session.request("GET", "/echo", {}, {}), { code: Code.Canceled });
});

Deno.test("an idle session closes by itself; requests on one session share it", async () => {
  const server = await h2Server();
  const session = new H2Session(`http://127.0.0.1:${server.port}`, { ...fast, idleCloseMs: 300 });
  try {
    const [a, b] = await Promise.all([
      session.request("GET", "/echo", {}, {}),
      session.request("GET", "/echo", {}, {}),
    ]);
    assert.deepEqual(await Promise.all([read(a), read(b)]), ["ok", "ok"]);
    assert.equal(session.opened, 1);
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(session.streams, 0);
    assert.equal(await read(await session.request("GET", "/echo", {}, {})), "ok");
    assert.equal(session.opened, 2);
  } finally {
    session.close();
    await server.close();
  }
});

/** Sockets of this process in SYN-SENT towards `port` (/proc/net/tcp: state 02). */
function synSentTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").filter((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[2]?.endsWith(`:${hexPort}`) && fields[3] === "02";
  }).length;
}

Deno.test({
  name: "a connect given up on while TCP is still connecting leaves no socket behind",
  // A listener that never accepts, with its backlog full: new SYNs go unanswered (SYN-SENT).
  ignore: !existsSync("/usr/bin/python3") || Deno.build.os !== "linux",
  async fn() {
    const filler = new Deno.Command("/usr/bin/python3", {
      args: [
        "-c",
        [
          "import socket, sys, time",
          "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
          "held = []",
          "for _ in range(4):",
          "    c = socket.socket(); c.setblocking(False)",
          "    try: c.connect(s.getsockname())",
          "    except BlockingIOError: pass",
          "    held.append(c)",
          "print(s.getsockname()[1], flush=True)",
          "sys.stdin.read()",
        ].join("\n"),
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const reader = filler.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const port = Number((await reader.read()).value);
    try {
      const before = synSentTo(port);
      const sessions = Array.from(
        { length: 4 },
        () => new H2Session(`http://127.0.0.1:${port}`, { ...fast, connectTimeoutMs: 300 }),
      );
      for (const session of sessions) {
        await assert.rejects(session.request("GET", "/echo", {}, {}), (error: unknown) => {
          assert.ok(error instanceof ConnectError);
          assert.equal(error.code, Code.Unavailable);
          return true;
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(synSentTo(port), before, "every given-up connect's socket was closed");
      for (const session of sessions) session.close();
    } finally {
      await filler.stdin.close();
      reader.releaseLock();
      await filler.stdout.cancel().catch(() => {});
      await filler.status;
    }
  },
});
