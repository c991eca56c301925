import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../shared/gen/grpc/health/v1/health_pb.ts";
import { asInvalidArgument, decodingErrorOptions } from "./parse_errors.ts";

const SERVING = HealthCheckResponse_ServingStatus.SERVING;

/**
 * A Health service whose handlers fail the way a handler that is itself a client fails when a
 * peer's response does not decode: Connect's own "parse binary" error, which is not the caller's.
 */
async function serve() {
  const server = http.createServer(connectNodeAdapter({
    routes(router) {
      router.service(Health, {
        check(request) {
          if (request.service === "downstream") {
            throw new ConnectError("parse binary: premature EOF", Code.Internal);
          }
          return { status: SERVING };
        },
        async *watch(request) {
          yield { status: SERVING };
          if (request.service === "downstream") {
            throw new ConnectError("parse binary: premature EOF", Code.Internal);
          }
        },
      });
    },
    ...decodingErrorOptions(),
  }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createClient(Health, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  return {
    url,
    client,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function codeOf(call: () => Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call();
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

Deno.test("an undecodable unary request is INVALID_ARGUMENT (HTTP 400)", async () => {
  const { url, close } = await serve();
  try {
    const response = await fetch(`${url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array([0x0a, 0x40, 0x01]), // field 1 claims 64 bytes, has one
    });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), {
      code: "invalid_argument",
      message: "parse binary: premature EOF",
    });
  } finally {
    await close();
  }
});

Deno.test("an undecodable first stream message is INVALID_ARGUMENT", async () => {
  const { url, close } = await serve();
  try {
    const frame = new Uint8Array([0, 0, 0, 0, 1, 0x00]); // field number 0
    const response = await fetch(`${url}/grpc.health.v1.Health/Watch`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto" },
      body: frame,
    });
    const end = new TextDecoder().decode(new Uint8Array(await response.arrayBuffer()).slice(5));
    assert.equal(JSON.parse(end).error.code, "invalid_argument", end);
  } finally {
    await close();
  }
});

Deno.test("a handler's own decoding failure stays INTERNAL, unary and streaming", async () => {
  const { client, close } = await serve();
  try {
    assert.equal(await codeOf(() => client.check({ service: "" })), "ok");
    assert.equal(await codeOf(() => client.check({ service: "downstream" })), Code.Internal);
    const statuses: HealthCheckResponse_ServingStatus[] = [];
    const code = await codeOf(async () => {
      for await (const reply of client.watch({ service: "downstream" })) {
        statuses.push(reply.status);
      }
    });
    assert.deepEqual(statuses, [SERVING]);
    assert.equal(code, Code.Internal);
  } finally {
    await close();
  }
});

Deno.test("asInvalidArgument rewrites request decoding errors only", () => {
  const parse = new ConnectError("parse binary: invalid varint", Code.Internal);
  assert.equal(asInvalidArgument(parse), true);
  assert.equal(parse.code, Code.InvalidArgument);
  assert.equal(parse.message, "[invalid_argument] parse binary: invalid varint");

  const missing = new ConnectError(
    "protocol error: missing input message for unary method",
    Code.Unimplemented,
  );
  assert.equal(asInvalidArgument(missing), true);
  assert.equal(missing.code, Code.InvalidArgument);

  for (
    const other of [
      new ConnectError("message size 2000000 is larger than configured readMaxBytes 1048576", 8),
      new ConnectError("internal error", Code.Internal),
      new ConnectError("parse binary: x", Code.Unavailable),
      new Error("parse binary: x"),
    ]
  ) {
    const before = other instanceof ConnectError ? other.code : undefined;
    assert.equal(asInvalidArgument(other), false);
    if (other instanceof ConnectError) assert.equal(other.code, before);
  }
});
