// Issue 9, item 12: attestation rate limits count per real client. Behind a trusted proxy the
// forwarded client address is the key (not the proxy's), IPv6 clients count per /64, and a
// peer that is not a trusted proxy cannot pick its key by sending X-Forwarded-For. Item 1's
// field bounds on AttestNode are checked here too.
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { NodeClusterService, NodeRole } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function attester(port: number) {
  const client = createClient(
    NodeClusterService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
  );
  /** Resolves to "ok" or the refusal's Connect code. */
  return async (forwardedFor?: string, fields: { hostname?: string; key?: number } = {}) => {
    try {
      await client.attestNode({
        role: NodeRole.EDGE,
        publicKey: crypto.getRandomValues(new Uint8Array(fields.key ?? 32)),
        hostname: fields.hostname ?? "host",
        os: "linux",
        arch: "x86_64",
      }, { headers: forwardedFor ? { "x-forwarded-for": forwardedFor } : {} });
      return "ok";
    } catch (error) {
      return Code[ConnectError.from(error).code];
    }
  };
}

async function times(n: number, call: () => Promise<string>): Promise<string[]> {
  const results: string[] = [];
  for (let i = 0; i < n; i++) results.push(await call());
  return results;
}

Deno.test(
  `[${TEST_DB_KIND}] behind a trusted proxy each forwarded client (IPv6: each /64) has its own bucket`,
  opts,
  async () => {
    const controller = await startControllerProcess({ trustedProxies: ["127.0.0.0/8"] });
    try {
      const attest = attester(controller.port);
      // The limit is 5 a minute: the sixth from one client is refused...
      const first = await times(6, () => attest("198.51.100.7, 127.0.0.1"));
      assert.deepEqual(first, [...Array(5).fill("ok"), "ResourceExhausted"]);
      // ...but another client behind the same proxy is not affected.
      assert.equal(await attest("198.51.100.8"), "ok");
      // Rotating through one /64 does not buy more attempts; another /64 is another client.
      let i = 0;
      const v6 = await times(6, () => attest(`2001:db8:1:2::${++i}`));
      assert.deepEqual(v6, [...Array(5).fill("ok"), "ResourceExhausted"]);
      assert.equal(await attest("2001:db8:1:3::1"), "ok");
    } finally {
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] X-Forwarded-For from a peer that is not a trusted proxy is ignored`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    try {
      const attest = attester(controller.port);
      let i = 0;
      const spoofed = await times(6, () => attest(`198.51.100.${++i}`));
      assert.deepEqual(spoofed, [...Array(5).fill("ok"), "ResourceExhausted"]);
    } finally {
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] AttestNode refuses oversized hostnames and malformed keys with INVALID_ARGUMENT`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    try {
      const attest = attester(controller.port);
      assert.equal(await attest(undefined, { hostname: "h".repeat(10_000) }), "InvalidArgument");
      assert.equal(await attest(undefined, { key: 4096 }), "InvalidArgument");
      assert.equal(await attest(undefined, { hostname: "h".repeat(253) }), "ok");
    } finally {
      await controller.stop();
    }
  },
);
