// The fault proxy against a real echo server over loopback TCP: each mode, proven by what the
// client and the server actually see on their sockets.
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { FaultProxy } from "./fault_proxy.ts";
import { eventually } from "./processes.ts";

/** Waits (boundedly, so a proxy that never gets there fails rather than hangs) for `value`. */
function until<T>(value: () => T | undefined | false, what: string): Promise<T> {
  return eventually(() => Promise.resolve(value() || undefined), what, 5000);
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long "nothing arrived" is watched for: many loopback round trips. */
const QUIET_MS = 400;

/** A socket end whose bytes, error and close are recorded. */
class Peer {
  readonly chunks: Buffer[] = [];
  error?: string;
  isClosed = false;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this.chunks.push(chunk));
    socket.on("error", (error: NodeJS.ErrnoException) => this.error = error.code ?? error.message);
    socket.once("close", () => this.isClosed = true);
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.bytes.toString();
  }

  /** Waits for the socket's close. */
  async gone(what = "the socket to close"): Promise<void> {
    await until(() => this.isClosed, what);
  }

  /** Waits until `n` bytes have arrived. */
  async received(n: number, what = `${n} bytes`): Promise<string> {
    return await until(() => this.bytes.length >= n && this.text, what);
  }
}

/** An echo server that keeps its own end of every connection for the test to look at. */
class EchoServer {
  readonly peers: Peer[] = [];
  readonly server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const peer = new Peer(socket);
    this.peers.push(peer);
    socket.on("data", (chunk: Buffer) => socket.write(chunk));
    socket.on("end", () => socket.end());
  });

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  get bytesReceived(): number {
    return this.peers.reduce((sum, peer) => sum + peer.bytes.length, 0);
  }

  async close(): Promise<void> {
    for (const peer of this.peers) peer.socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function connect(port: number): Promise<Peer> {
  const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  const peer = new Peer(socket);
  await new Promise<void>((resolve) => {
    socket.once("connect", () => resolve());
    socket.once("close", () => resolve());
  });
  return peer;
}

/** A proxy in front of a fresh echo server, both stopped after `fn`. */
async function withProxy(fn: (proxy: FaultProxy, echo: EchoServer) => Promise<void>) {
  const echo = new EchoServer();
  const proxy = await FaultProxy.start(await echo.listen());
  try {
    await fn(proxy, echo);
  } finally {
    await proxy.stop();
    await echo.close();
  }
}

Deno.test("pass: bytes and half-closes flow both ways, and are counted", async () => {
  await withProxy(async (proxy, echo) => {
    const client = await connect(proxy.port);
    client.socket.write("hello");
    assert.equal(await client.received(5), "hello");
    assert.equal(echo.peers[0].text, "hello");
    assert.deepEqual(
      { ...proxy.stats },
      { accepted: 1, refused: 0, live: 1, bytesUp: 5, bytesDown: 5, resets: 0 },
    );
    // The client's FIN reaches the server as a FIN (which ends its side in turn), not a reset.
    client.socket.end();
    await client.gone();
    await echo.peers[0].gone();
    assert.equal(client.error, undefined);
    assert.equal(echo.peers[0].error, undefined);
    await until(() => proxy.stats.live === 0, "the connection to go");
  });
});

Deno.test("blackhole: nothing flows either way on old or new connections; heal delivers", async () => {
  await withProxy(async (proxy, echo) => {
    const old = await connect(proxy.port);
    old.socket.write("a");
    await old.received(1);
    proxy.blackhole();
    assert.equal(proxy.mode, "blackhole");
    old.socket.write("b");
    echo.peers[0].socket.write("server-side");
    const fresh = await connect(proxy.port);
    fresh.socket.write("c");
    await sleep(QUIET_MS);
    assert.equal(echo.bytesReceived, 1, "the server got nothing during the blackhole");
    assert.equal(old.text, "a", "the client got nothing during the blackhole");
    assert.equal(fresh.text, "");
    assert.ok(!old.isClosed && !fresh.isClosed, "both sockets of each connection stay open");
    assert.equal(proxy.stats.live, 2);

    proxy.pass();
    assert.equal(await old.received(1 + 1 + "server-side".length), "aserver-sideb");
    assert.equal(await fresh.received(1), "c");
    assert.equal(old.error, undefined);
  });
});

Deno.test("blackhole: a close during the blackhole is passed on after heal", async () => {
  await withProxy(async (proxy, echo) => {
    const client = await connect(proxy.port);
    client.socket.write("x");
    await client.received(1);
    proxy.blackhole();
    client.socket.destroy();
    await sleep(QUIET_MS);
    assert.ok(!echo.peers[0].isClosed, "the server does not learn of the close in a blackhole");
    proxy.pass();
    await echo.peers[0].gone();
    await until(() => proxy.stats.live === 0, "the connection to go");
  });
});

Deno.test("resetAll: every current connection is reset on both sides; new ones work", async () => {
  await withProxy(async (proxy, echo) => {
    const a = await connect(proxy.port);
    const b = await connect(proxy.port);
    a.socket.write("1");
    b.socket.write("2");
    await a.received(1);
    await b.received(1);
    assert.equal(proxy.resetAll(), 2);
    await Promise.all([a.gone(), b.gone(), ...echo.peers.map((p) => p.gone())]);
    assert.equal(a.error, "ECONNRESET");
    assert.equal(b.error, "ECONNRESET");
    for (const peer of echo.peers) assert.equal(peer.error, "ECONNRESET");
    await until(() => proxy.stats.live === 0, "the connections to go");
    assert.equal(proxy.stats.resets, 2);

    const c = await connect(proxy.port);
    c.socket.write("3");
    assert.equal(await c.received(1), "3");
  });
});

Deno.test("refuse: new connections are reset at once, existing ones go on", async () => {
  await withProxy(async (proxy, echo) => {
    const old = await connect(proxy.port);
    proxy.refuse();
    const refused = await connect(proxy.port);
    refused.socket.write("never");
    await refused.gone();
    assert.equal(refused.text, "");
    assert.equal(echo.peers.length, 1, "the refused connection never reached the server");
    assert.equal(proxy.stats.refused, 1);
    old.socket.write("still");
    assert.equal(await old.received(5), "still");

    proxy.pass();
    const later = await connect(proxy.port);
    later.socket.write("ok");
    assert.equal(await later.received(2), "ok");
  });
});

Deno.test("latency: each chunk is delayed each way, in order", async () => {
  await withProxy(async (proxy) => {
    const client = await connect(proxy.port);
    const roundTrip = async (text: string) => {
      const before = client.bytes.length;
      const started = performance.now();
      client.socket.write(text);
      await client.received(before + text.length);
      return performance.now() - started;
    };
    const direct = await roundTrip("warm");
    proxy.latency(200);
    const delayed = await roundTrip("slow");
    assert.ok(delayed >= 400, `a round trip took ${delayed} ms, less than 2 × 200 ms`);
    assert.ok(delayed < 400 + 1000, `a round trip took ${delayed} ms`);
    client.socket.write("1");
    client.socket.write("2");
    client.socket.write("3");
    assert.equal(await client.received(11), "warmslow123");
    proxy.pass();
    assert.ok(direct < 400, `without latency a round trip took ${direct} ms`);
  });
});

Deno.test("cutMidMessage: half of the next downstream chunk arrives, then both sides reset", async () => {
  await withProxy(async (proxy, echo) => {
    const client = await connect(proxy.port);
    client.socket.write("before");
    await client.received(6);
    const cut = proxy.cutMidMessage();
    const message = Buffer.alloc(1000, "m");
    client.socket.write(message);
    const done = await cut;
    assert.ok(done, "the cut happened");
    assert.equal(done.forwarded, Math.floor(done.of / 2));
    assert.ok(done.forwarded > 0 && done.forwarded < done.of);
    await client.gone();
    await echo.peers[0].gone();
    assert.equal(client.bytes.length, 6 + done.forwarded, "exactly half the chunk arrived");
    assert.equal(client.text, "before" + "m".repeat(done.forwarded));
    assert.equal(client.error, "ECONNRESET");
    assert.equal(echo.peers[0].error, "ECONNRESET");

    // One-shot: the next connection is left whole.
    const next = await connect(proxy.port);
    next.socket.write(message);
    assert.equal((await next.received(1000)).length, 1000);
  });
});

Deno.test("setTarget: no target resets arrivals; a target set later is used", async () => {
  const echo = new EchoServer();
  const proxy = await FaultProxy.start();
  try {
    const early = await connect(proxy.port);
    await early.gone();
    assert.equal(proxy.stats.refused, 1);
    proxy.setTarget(await echo.listen());
    const client = await connect(proxy.port);
    client.socket.write("there");
    assert.equal(await client.received(5), "there");
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

Deno.test("a target that refuses the connection resets the client", async () => {
  const echo = new EchoServer();
  const port = await echo.listen();
  await echo.close();
  const proxy = await FaultProxy.start(port);
  try {
    const client = await connect(proxy.port);
    await client.gone();
    assert.equal(client.error, "ECONNRESET");
    await until(() => proxy.stats.live === 0, "the connection to go");
  } finally {
    await proxy.stop();
  }
});

Deno.test("stop closes every socket, held or flowing, and the listener", async () => {
  const echo = new EchoServer();
  const proxy = await FaultProxy.start(await echo.listen());
  try {
    const flowing = await connect(proxy.port);
    flowing.socket.write("f");
    await flowing.received(1);
    proxy.blackhole();
    const held = await connect(proxy.port);
    held.socket.write("h");
    await proxy.stop();
    await Promise.all([flowing.gone(), held.gone(), ...echo.peers.map((p) => p.gone())]);
    assert.equal(proxy.stats.live, 0);
    const after = await connect(proxy.port);
    await after.gone();
    assert.equal(after.error, "ECONNREFUSED");
  } finally {
    await proxy.stop();
    await echo.close();
  }
});
