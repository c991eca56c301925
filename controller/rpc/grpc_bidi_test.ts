// The lean gRPC path against a stock gRPC client (connect-node's gRPC transport, which shares no
// code with it): messages both ways in order, statuses with metadata, deadlines, cancellation,
// and bad frames. A real node:http2 server on a real socket.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  type EdgeDownstream,
  EdgeDownstreamSchema,
  type EdgeUpstream,
  EdgeUpstreamSchema,
  NodeClusterService,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { FrameReader, type GrpcCall, isGrpcProtoCall, serveGrpcBidi } from "./grpc_bidi.ts";
import { deferGoawayReply } from "../../shared/net/h2_goaway.ts";

type Handler = (
  requests: AsyncIterable<EdgeUpstream>,
  call: GrpcCall,
) => AsyncIterable<EdgeDownstream>;

const PATH = "/aegis.edge.v1.NodeClusterService/ConnectEdge";

async function withServer(
  handler: Handler,
  run: (baseUrl: string) => Promise<void>,
  options: { writeStallMs?: number; onStall?: () => void } = {},
) {
  const server = http2.createServer();
  // As the listener does: Deno 2.9 may abort when it answers a GOAWAY inside nghttp2.
  server.on("session", (session) => deferGoawayReply(session));
  server.on("stream", (stream, headers) => {
    if (!isGrpcProtoCall(headers, PATH)) {
      stream.respond({ ":status": 404 }, { endStream: true });
      return;
    }
    serveGrpcBidi(stream, headers, {
      input: EdgeUpstreamSchema,
      output: EdgeDownstreamSchema,
      readMaxBytes: 64 * 1024,
      handler,
      ...options,
    });
  });
  // session.destroy() leaves a plaintext socket open in Deno 2.9 (see listener.ts): the sockets
  // themselves are closed, or server.close() would wait for them.
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await run(`http://127.0.0.1:${port}`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** A ConnectEdge request by hand, for what a stock client never sends or never stops doing. */
function rawCall(session: http2.ClientHttp2Session, headers: Record<string, string> = {}) {
  return session.request({
    ":method": "POST",
    ":path": PATH,
    "content-type": "application/grpc",
    ...headers,
  });
}

function client(baseUrl: string) {
  return createClient(
    NodeClusterService,
    createGrpcTransport({ baseUrl, useBinaryFormat: true }),
  );
}

function upstream(token: string): EdgeUpstream {
  return create(EdgeUpstreamSchema, { envelope: { securityToken: token } });
}

function goaway(message: string): EdgeDownstream["body"] {
  return { case: "goaway", value: { code: "X", message, retryAfterMs: 0 } as never };
}

async function* messages(count: number, size = 8): AsyncIterable<EdgeUpstream> {
  for (let i = 0; i < count; i++) yield upstream(`${i}:`.padEnd(size, "x"));
}

Deno.test("grpc bidi: every message both ways, in order, then OK", async () => {
  await withServer(async function* (requests) {
    for await (const request of requests) {
      yield create(EdgeDownstreamSchema, { body: goaway(request.envelope!.securityToken) });
    }
  }, async (baseUrl) => {
    const seen: string[] = [];
    // Messages of every size up to 20 KiB: frames split across DATA frames and chunks.
    const sizes = Array.from({ length: 200 }, (_, i) => (i * 97) % 20_000 + 1);
    async function* varied() {
      for (const [i, size] of sizes.entries()) yield upstream(`${i}:`.padEnd(size, "y"));
    }
    for await (const reply of client(baseUrl).connectEdge(varied())) {
      if (reply.body.case === "goaway") seen.push(reply.body.value.message);
    }
    assert.equal(seen.length, sizes.length);
    for (const [i, message] of seen.entries()) {
      assert.equal(message.length, Math.max(sizes[i], `${i}:`.length));
      assert.ok(message.startsWith(`${i}:`));
    }
  });
});

Deno.test("grpc bidi: a thrown error arrives with its code, message and metadata", async () => {
  await withServer(async function* (requests) {
    for await (const _ of requests) {
      yield create(EdgeDownstreamSchema, { body: goaway("first") });
      throw new ConnectError("no such node", Code.PermissionDenied, {
        "aegis-error-code": "NODE_REVOKED",
      });
    }
  }, async (baseUrl) => {
    const got: string[] = [];
    const error = await (async () => {
      for await (const reply of client(baseUrl).connectEdge(messages(3))) {
        if (reply.body.case === "goaway") got.push(reply.body.value.message);
      }
    })().then(() => undefined, (e) => ConnectError.from(e));
    assert.deepEqual(got, ["first"]);
    assert.equal(error?.code, Code.PermissionDenied);
    assert.equal(error?.rawMessage, "no such node");
    assert.equal(error?.metadata.get("aegis-error-code"), "NODE_REVOKED");
  });
});

Deno.test("grpc bidi: an error before any message is a trailers-only status", async () => {
  // deno-lint-ignore require-yield
  await withServer(async function* () {
    throw new ConnectError("go away", Code.ResourceExhausted);
  }, async (baseUrl) => {
    const error = await (async () => {
      for await (const _ of client(baseUrl).connectEdge(messages(1))) { /* none */ }
    })().then(() => undefined, (e) => ConnectError.from(e));
    assert.equal(error?.code, Code.ResourceExhausted);
    assert.equal(error?.rawMessage, "go away");
  });
});

Deno.test("grpc bidi: the server ends a call at its grpc-timeout", async () => {
  let sawEnd: unknown;
  await withServer(async function* (requests) {
    try {
      for await (const _ of requests) { /* never answers */ }
    } catch (error) {
      sawEnd = error;
    }
    yield* [];
  }, async (baseUrl) => {
    // A raw client that never half-closes and never gives up by itself: only the server's
    // deadline can end this call.
    const session = http2.connect(baseUrl);
    try {
      const stream = rawCall(session, { "grpc-timeout": "200m" });
      stream.write(new Uint8Array([0, 0, 0, 0, 0]));
      stream.resume();
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
        stream.on("trailers", resolve)
      );
      assert.equal(trailers["grpc-status"], String(Code.DeadlineExceeded));
      stream.close();
    } finally {
      session.close();
    }
  });
  assert.ok(sawEnd instanceof ConnectError, "the handler's request stream ended with an error");
});

Deno.test("grpc bidi: a client that cancels aborts the call on the server", async () => {
  let resolveAborted: (aborted: boolean) => void;
  const aborted = new Promise<boolean>((resolve) => resolveAborted = resolve);
  await withServer(async function* (requests, call) {
    yield create(EdgeDownstreamSchema, { body: goaway("hello") });
    try {
      for await (const _ of requests) { /* waits */ }
    } catch { /* the peer went away */ }
    resolveAborted(call.aborted);
  }, async (baseUrl) => {
    const controller = new AbortController();
    async function* idle() {
      yield upstream("a");
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }
    const error = await (async () => {
      for await (const _ of client(baseUrl).connectEdge(idle(), { signal: controller.signal })) {
        controller.abort();
      }
    })().then(() => undefined, (e) => ConnectError.from(e));
    assert.equal(error?.code, Code.Canceled);
    assert.equal(await aborted, true);
  });
});

Deno.test("grpc bidi: compression is refused before any message is read", async () => {
  await withServer(async function* () {
    yield* [];
  }, async (baseUrl) => {
    const session = http2.connect(baseUrl);
    try {
      const stream = rawCall(session, { "grpc-encoding": "gzip" });
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
        stream.on("response", resolve)
      );
      stream.resume();
      assert.equal(headers["grpc-status"], String(Code.Unimplemented));
      assert.equal(headers["grpc-accept-encoding"], "identity");
      stream.close();
    } finally {
      session.close();
    }
  });
});

Deno.test("grpc bidi: a peer that stops reading is cut, and the handler is ended", async () => {
  let stalled = 0;
  let handlerEnded = false;
  await withServer(async function* () {
    try {
      // 64 MiB in 64 KiB messages: far past what flow control and the stream's buffer hold.
      for (let i = 0; i < 1024; i++) {
        yield create(EdgeDownstreamSchema, { body: goaway("z".repeat(64 * 1024)) });
      }
    } finally {
      handlerEnded = true;
    }
  }, async (baseUrl) => {
    const session = http2.connect(baseUrl);
    try {
      const stream = rawCall(session);
      stream.pause(); // reads nothing
      const deadline = Date.now() + 10_000;
      while (stalled === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      stream.destroy();
    } finally {
      session.destroy();
    }
  }, { writeStallMs: 300, onStall: () => stalled++ });
  assert.equal(stalled, 1);
  assert.equal(handlerEnded, true);
});

function takeAll(reader: FrameReader): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let m = reader.take(); m; m = reader.take()) out.push(m);
  return out;
}

Deno.test("frame reader: messages split anywhere come out whole, in order", () => {
  const payloads = [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7)];
  const wire = payloads.flatMap((p) => [0, 0, 0, (p.length >> 8) & 255, p.length & 255, ...p]);
  for (const step of [1, 2, 5, 7, wire.length]) {
    const reader = new FrameReader(1024);
    const out: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i += step) {
      reader.append(new Uint8Array(wire.slice(i, i + step)));
      out.push(...takeAll(reader));
    }
    assert.deepEqual(out.map((m) => [...m]), payloads.map((p) => [...p]), `step ${step}`);
    assert.equal(reader.pending, 0);
    assert.equal(reader.ready, false);
  }
});

Deno.test("frame reader: a message sent one byte at a time costs its size, not more", () => {
  // The attack: a large message in 1-byte DATA frames. Kept chunk by chunk, each byte cost a few
  // hundred bytes of heap; in one doubling buffer the pending bytes cost at most twice their size.
  const reader = new FrameReader(1 << 20);
  reader.append(new Uint8Array([0, 0, 0x10, 0, 0])); // declares 1 MiB
  for (let i = 0; i < 200_000; i++) reader.append(new Uint8Array([i & 255]));
  assert.equal(reader.pending, 200_005);
  assert.equal(reader.ready, false);
  assert.equal(reader.take(), undefined);
  assert.ok(reader.capacity <= 2 * reader.pending, `${reader.capacity} bytes held`);
  reader.append(new Uint8Array((1 << 20) - 200_000));
  const [message] = takeAll(reader);
  assert.equal(message.length, 1 << 20);
  assert.equal(message[199_999], 199_999 & 255);
  assert.equal(reader.pending, 0);
  assert.equal(reader.capacity, 0, "an empty reader holds no buffer");
});

Deno.test("frame reader: a declared length past the limit is refused from the header", () => {
  const reader = new FrameReader(100);
  assert.throws(
    () => reader.append(new Uint8Array([0, 0, 0, 0, 101])),
    (e: unknown) => e instanceof ConnectError && e.code === Code.ResourceExhausted,
  );
  // Also when an earlier whole message has not been taken yet.
  const behind = new FrameReader(100);
  assert.throws(
    () => behind.append(new Uint8Array([0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 200])),
    (e: unknown) => e instanceof ConnectError && e.code === Code.ResourceExhausted,
  );
});

Deno.test("frame reader: compressed and unknown flags are refused as the caller's fault", () => {
  for (const flags of [1, 2, 0x80]) {
    assert.throws(
      () => new FrameReader(100).append(new Uint8Array([flags, 0, 0, 0, 0])),
      (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument,
      `flags ${flags}`,
    );
  }
});

Deno.test("isGrpcProtoCall takes gRPC binary only; JSON and gRPC-Web stay on Connect", () => {
  const call = (contentType: string, method = "POST") =>
    isGrpcProtoCall({ ":method": method, ":path": PATH, "content-type": contentType }, PATH);
  assert.equal(call("application/grpc"), true);
  assert.equal(call("application/grpc+proto"), true);
  assert.equal(call("application/grpc; charset=utf-8"), true);
  assert.equal(call("application/grpc+json"), false);
  assert.equal(call("application/grpc-web+proto"), false);
  assert.equal(call("application/connect+proto"), false);
  assert.equal(call("application/grpc", "GET"), false);
});
