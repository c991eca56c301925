// The caller's peer sessions do not pile up: a peer relay that is idle, or no longer registered
// (stopped or died), has its HTTP/2 session closed and leaves the map; one carrying a call stays
// until the call ends. In process, against a local HTTP/2 server playing the peers.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { RelayPeerClients } from "../../controller/rpc/relay_peer_client.ts";
import type { ForwardedCall } from "../../controller/app/peer_calls.ts";
import { deferGoawayReply } from "../../shared/net/h2_goaway.ts";

Deno.test("relay peer sessions are closed when idle or unregistered, not while in use", async () => {
  let opened = 0;
  let closed = 0;
  // Peers answer every call at once with NOT_FOUND, except on the `hang` server, which never does.
  const serve = async (answer: boolean) => {
    const server = http2.createServer();
    server.on("session", (session) => {
      // As the real peers' listener does (controller/server/listener.ts): without it, Deno 2.9
      // answers our GOAWAY from inside nghttp2 and sometimes aborts the process (h2_goaway.ts).
      deferGoawayReply(session);
      opened++;
      session.on("close", () => closed++);
    });
    server.on("stream", (stream) => {
      if (!answer) return;
      stream.respond({
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": "5",
        "grpc-message": "no such call",
        "aegis-error-code": "NOT_FOUND",
      }, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { server, port: (server.address() as AddressInfo).port };
  };
  const answering = await serve(true);
  const hanging = await serve(false);
  const port = answering.port;
  const endpoints: Record<string, string> = {
    r1: `http://127.0.0.1:${port}`,
    r2: `http://localhost:${port}`,
    r3: `http://127.0.0.1:${hanging.port}`,
  };
  let live = Object.values(endpoints);
  let now = 0;
  const clients = new RelayPeerClients(
    {
      endpointOf: (id: string) => Promise.resolve(endpoints[id]),
      liveEndpoints: () => Promise.resolve(live),
    },
    { issue: () => Promise.resolve("token") },
    "self",
    { idleMs: 1000, sweepMs: 0, now: () => now },
  );
  const call = (): ForwardedCall => ({
    callId: crypto.randomUUID(),
    nodeId: "n-1",
    tool: "cmd.run",
    argumentsJson: "{}",
    deadline: new Date(Date.now() + 10_000),
  });
  const forward = async (relay: string, signal = new AbortController().signal) => {
    try {
      for await (const _ of clients.forward(relay, call(), signal)) { /* drain */ }
      return "ok";
    } catch (error) {
      return (error as { code?: string }).code ?? String(error);
    }
  };
  try {
    assert.equal(await forward("r1"), "NOT_FOUND");
    assert.equal(await forward("r2"), "NOT_FOUND");
    assert.equal(clients.size, 2);

    now = 500;
    assert.equal(await clients.sweep(), 0, "a recently used, registered peer was dropped");
    assert.equal(clients.size, 2);

    live = live.filter((e) => e !== endpoints.r2);
    assert.equal(await clients.sweep(), 1, "a peer missing from the registry was kept");
    assert.equal(clients.size, 1);

    now = 2000;
    assert.equal(await clients.sweep(), 1, "an idle peer was kept");
    assert.equal(clients.size, 0);

    // A peer carrying a call is kept however long the call runs, then goes once idle.
    const abort = new AbortController();
    const running = forward("r3", abort.signal);
    const until = Date.now() + 5000;
    while (clients.size === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    now = 100_000;
    assert.equal(await clients.sweep(), 0, "a peer with a call in flight was dropped");
    abort.abort();
    await running;
    now = 200_000;
    assert.equal(await clients.sweep(), 1);
    assert.equal(clients.size, 0);

    // Every session the sweeps dropped was closed, not just forgotten.
    const deadline = Date.now() + 5000;
    while (closed < opened && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(closed, opened, `${opened - closed} of ${opened} peer sessions left open`);
  } finally {
    clients.close();
    for (const { server } of [answering, hanging]) {
      await new Promise((resolve) => server.close(resolve));
    }
  }
});
