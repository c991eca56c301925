// Review finding 2: one address could take every connection slot (10,000, none per address) and
// lock the fleet out, and an HTTP/2 connection could idle for ever after one request (over TLS
// even without one). Now connections are capped per socket address, the last tenth of the total
// is kept for addresses with no connection yet, and an HTTP/2 session with no open stream is
// closed after h2_idle_timeout_ms (h2_first_stream_timeout_ms before its first), with TLS too.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { eventually } from "../support/processes.ts";
import { createNodeClient, type NodeClient } from "../../agent/client/node_client.ts";
import { EdgeConnection } from "../../agent/daemon/connection.ts";
import { parseEdgeConfig } from "../../shared/config/edge_config.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import { credentials } from "./node_support.ts";
import { grpcFrame, h2Call, RPC } from "./wire.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Opens `count` TCP connections from `localAddress`; resolves with those still open after 1 s. */
async function openFrom(port: number, localAddress: string, count: number) {
  const sockets = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect({ port, host: "127.0.0.1", localAddress });
        socket.on("error", () => {});
        socket.once("connect", () => resolve(socket));
        socket.once("close", () => resolve(socket));
      })),
  );
  await delay(1000);
  return sockets.filter((s) => !s.destroyed && s.readyState === "open");
}

Deno.test(
  `[${TEST_DB_KIND}] connections are capped per address, and the last tenth is kept for newcomers`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      yaml: [
        "limits:",
        "  max_connections: 100",
        "  max_connections_per_address: 30",
        "  handshake_timeout_ms: 30000",
      ].join("\n"),
    });
    const all: net.Socket[] = [];
    try {
      const hog = await openFrom(controller.port, "127.0.4.1", 60);
      all.push(...hog);
      assert.equal(hog.length, 30, `one address kept ${hog.length} connections`);
      // Fill to the reserve (90): two more addresses at their cap.
      for (const address of ["127.0.4.2", "127.0.4.3"]) {
        const held = await openFrom(controller.port, address, 30);
        all.push(...held);
        assert.equal(held.length, 30);
      }
      // Past 90%: an address that already has a connection gets no more...
      const more = await openFrom(controller.port, "127.0.4.2", 1);
      all.push(...more);
      assert.equal(more.length, 0, "the reserve went to an address already connected");
      // ...but a daemon from a fresh address still gets in, and is served.
      const session = http2.connect(`http://127.0.0.1:${controller.port}`, {
        localAddress: "127.0.9.9",
      } as http2.ClientSessionOptions);
      session.on("error", () => {});
      const reply = await h2Call(session, RPC.healthCheck, {
        chunks: [grpcFrame(new Uint8Array())],
        timeoutMs: 5000,
      });
      session.destroy();
      assert.equal(reply.grpcStatus, 0, JSON.stringify(reply));
    } finally {
      for (const socket of all) socket.destroy();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] many daemons behind one address all stay connected; anonymous ones are capped`,
  opts,
  async () => {
    // Five hosts behind one NAT (all 127.0.0.1) against a per-address cap of 3: a connection that
    // carries an authenticated node stream leaves its address's count, anonymous ones do not.
    const controller = await startControllerProcess({
      yaml: ["limits:", "  max_connections_per_address: 3", "  handshake_timeout_ms: 30000"]
        .join("\n"),
    });
    const hosts: Host[] = [];
    const idle: net.Socket[] = [];
    try {
      const nodes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { host, nodeId } = await enrollNewHost(controller);
        hosts.push(host);
        nodes.push(nodeId);
        await host.startDaemon().waitFor(/stream connected/, 30_000);
      }
      const operator = await controller.operatorToken("team-a", "readonly");
      await eventually(async () => {
        const list = await (await controller.api("/v1/edge/hosts", { token: operator })).json();
        const hostsSeen = list.hosts as { node_id: string; status: string }[];
        const connected = hostsSeen.filter((h) => h.status === "Connected").length;
        return connected === 5 || undefined;
      }, "all five daemons Connected");
      const anonymous = await openFrom(controller.port, "127.0.0.1", 5);
      idle.push(...anonymous);
      assert.ok(
        anonymous.length <= 3,
        `anonymous connections from a capped address: ${anonymous.length} kept (at most 3)`,
      );
    } finally {
      for (const socket of idle) socket.destroy();
      for (const host of hosts) await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] one node cannot hold many connections uncounted by re-authenticating on each`,
  opts,
  async () => {
    // The exemption lasts only while the authenticated stream lives: each new stream of the node
    // replaces (ends) the previous one, whose connection counts against the address again.
    const controller = await startControllerProcess({
      yaml: ["limits:", "  max_connections_per_address: 4", "  handshake_timeout_ms: 30000"]
        .join("\n"),
    });
    const { host } = await enrollNewHost(controller);
    // The node's connections and the probes come from an address of their own: this process's
    // kept-alive REST connections (from 127.0.0.1) come and go with timing, and once left 2 of
    // the 4 free under a loaded CI.
    const from = "127.0.0.77";
    const clients: NodeClient[] = [];
    const streams: EdgeConnection[] = [];
    const idle: net.Socket[] = [];
    try {
      const creds = await credentials(host);
      const identity = { nodeId: decodeNodeToken(creds.token).sub, ...creds };
      const endpoint = parseEndpoint(controller.endpoint);
      const config = parseEdgeConfig("edge:\n  heartbeat_interval_secs: 30\n");
      // Three connections, each authenticating the same node: each new stream replaces the one
      // before, so two of the three connections are anonymous again.
      for (let i = 0; i < 3; i++) {
        // its own HTTP/2 connection
        const client = await createNodeClient(endpoint, { http2: { localAddress: from } });
        clients.push(client);
        streams.push(await EdgeConnection.open(client, endpoint, identity, config, "h", 10_000));
      }
      // The replaced streams end on the server, and their connections count again: of the 4
      // the address may hold, 2 are taken, whatever the timing (polled, never more than 10 s).
      let anonymous: net.Socket[] = [];
      const deadline = Date.now() + 10_000;
      do {
        for (const socket of anonymous) socket.destroy();
        await delay(500);
        anonymous = await openFrom(controller.port, from, 4);
      } while (anonymous.length !== 2 && Date.now() < deadline);
      idle.push(...anonymous);
      assert.equal(
        anonymous.length,
        2,
        "the replaced streams' connections count again; the live one does not",
      );
    } finally {
      for (const stream of streams) stream.close();
      for (const client of clients) client.close();
      for (const socket of idle) socket.destroy();
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] idle HTTP/2 sessions are closed by the server, plaintext and TLS`,
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "aegis-idle-" });
    const cert = `${dir}/cert.pem`;
    const key = `${dir}/key.pem`;
    const out = await new Deno.Command("openssl", {
      args: [
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        ...["-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
        ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const limits = "limits:\n  h2_idle_timeout_ms: 2000\n  h2_first_stream_timeout_ms: 2000";
    const plain = await startControllerProcess({ yaml: limits });
    const secure = await startControllerProcess({ yaml: limits, tls: { cert, key } });
    const ca = await Deno.readTextFile(cert);
    try {
      const results = await Promise.all([
        idleAfterOneCall(`http://127.0.0.1:${plain.port}`, {}),
        idleAfterOneCall(`https://localhost:${secure.port}`, { ca }),
        silentTlsSession(secure.port, ca),
      ]);
      console.log(`closed after: ${results.map((ms) => `${ms} ms`).join(", ")}`);
      for (const ms of results) assert.ok(ms >= 0 && ms < 8000, `still open: ${results}`);
    } finally {
      await plain.stop();
      await secure.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

/** One Health Check, then nothing: ms until the server closed the connection, or -1. */
async function idleAfterOneCall(url: string, options: http2.SecureClientSessionOptions) {
  const session = http2.connect(url, options);
  session.on("error", () => {});
  // A hostile client ignores GOAWAY; only the socket closing counts.
  const closed = new Promise<number>((resolve) => session.socket.once("close", () => resolve(0)));
  const reply = await h2Call(session, RPC.healthCheck, { chunks: [grpcFrame(new Uint8Array())] });
  assert.equal(reply.grpcStatus, 0, JSON.stringify(reply));
  const started = Date.now();
  const ms = await Promise.race([
    closed.then(() => Date.now() - started),
    delay(8000).then(() => -1),
  ]);
  session.destroy();
  return ms;
}

/** TLS, the HTTP/2 preface and SETTINGS, then no stream at all. */
async function silentTlsSession(port: number, ca: string) {
  const socket = tls.connect({
    port,
    host: "127.0.0.1",
    servername: "localhost",
    ca,
    ALPNProtocols: ["h2"],
  });
  socket.on("error", () => {});
  socket.on("data", () => {});
  await new Promise((resolve) => socket.once("secureConnect", resolve));
  socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  socket.write(new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0]));
  const started = Date.now();
  const closed = new Promise<number>((resolve) =>
    socket.once("close", () => resolve(Date.now() - started))
  );
  const ms = await Promise.race([closed, delay(8000).then(() => -1)]);
  socket.destroy();
  return ms;
}

function delay(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}
