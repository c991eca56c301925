// Every way enrollment can fail gets its own error, against a real controller process.
import assert from "node:assert/strict";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { challengeBytes } from "../shared/crypto/signed_bytes.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { fromConnectError } from "../shared/rpc_errors.ts";
import { loadOrCreateSigningKey, loadSigningKey } from "../controller/app/signing_key.ts";
import { TokenAuthority } from "../controller/app/tokens.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { startControllerProcess } from "./support/controller.ts";
import { makeHost } from "./support/host.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

async function mint(keyPath: string, cep: string, at: Date, ttlSecs = 900) {
  const authority = new TokenAuthority(await loadSigningKey(keyPath), "aegis-controller", () => at);
  return (await authority.issueEnrollment({ tenantId: "team-a", name: "", cep, ttlSecs })).token;
}

async function attest(
  client: NodeClient,
  key: NodePrivateKey,
  clientTime = new Date(),
) {
  return await client.attestNode({
    role: NodeRole.EDGE,
    publicKey: key.publicKey.bytes,
    hostname: "h",
    os: "linux",
    arch: "x86_64",
    clientTime: timestampFromDate(clientTime),
  });
}

Deno.test(
  `[${TEST_DB_KIND}] enrollment errors: expired, wrong controller, malformed, unreachable`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const host = await makeHost();
    const enroll = (token: string) =>
      host.aegis(["edge", "enroll", token, "--force", "--no-service"]);
    try {
      const keyPath = `${controller.dataDir}/signing-key.jwk`;

      const expired = await enroll(
        await mint(keyPath, controller.endpoint, new Date(Date.now() - 3600_000)),
      );
      assert.equal(expired.code, 65);
      assert.match(expired.stderr, /✖ the enrollment token expired at \d{4}-\d\d-\d\dT[\d:]+Z/);
      assert.match(
        expired.stderr,
        /→ Issue a fresh enrollment token \(they last 15 minutes by default\)\./,
      );

      const foreignDir = await Deno.makeTempDir();
      await loadOrCreateSigningKey(`${foreignDir}/k.jwk`);
      const foreign = await enroll(
        await mint(`${foreignDir}/k.jwk`, controller.endpoint, new Date()),
      );
      assert.equal(foreign.code, 65);
      assert.match(foreign.stderr, /✖ the enrollment token was signed by a different controller/);
      assert.match(foreign.stderr, /Issue one from the controller you enroll with/);

      const malformed = await enroll("not-a-token");
      assert.equal(malformed.code, 65);
      assert.match(
        malformed.stderr,
        /✖ the enrollment token is not a JWT \(three dot-separated parts\)/,
      );
      const notOurs = await enroll("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln");
      assert.match(
        notOurs.stderr,
        /this is not an AEGIS enrollment token \(bad or missing claims: /,
      );

      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const deadPort = (closed.addr as Deno.NetAddr).port;
      closed.close();
      const unreachable = await enroll(
        await mint(keyPath, `http://127.0.0.1:${deadPort}`, new Date()),
      );
      assert.equal(unreachable.code, 69);
      assert.match(unreachable.stderr, new RegExp(`✖ cannot reach 127\\.0\\.0\\.1:${deadPort}`));
      assert.match(unreachable.stderr, /→ Check that the endpoint is right/);
      await Deno.remove(foreignDir, { recursive: true });
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] clock skew is named with both times; attestation is rate-limited per address`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const client = await createNodeClient(parseEndpoint(controller.endpoint));
    try {
      const key = NodePrivateKey.generate();
      const ahead = new Date(Date.now() + 3600_000);
      const skew = await attest(client, key, ahead).catch((e) => fromConnectError(e));
      assert.equal((skew as { code: string }).code, "CLOCK_SKEW");
      assert.match(
        (skew as Error).message,
        /the host clock is 3\d{3}s ahead of the controller \(host \S+Z, controller \S+Z; leeway 300s\)/,
      );
      assert.match((skew as { hint: string }).hint, /chronyd/);

      // The skewed attempt counted: four more pass, the sixth in the minute is refused.
      for (let i = 0; i < 4; i++) await attest(client, key);
      const limited = await attest(client, key).catch((e) => fromConnectError(e));
      assert.equal((limited as { code: string }).code, "RATE_LIMITED");
      assert.match(
        (limited as Error).message,
        /too many attestations from 127\.0\.0\.1; try again in \d+s/,
      );
    } finally {
      client.close();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] 50 concurrent redemptions of one token yield exactly one node`,
  opts,
  async () => {
    const controller = await startControllerProcess({ edge: "attest_rate_limit_per_min: 1000" });
    const client = await createNodeClient(parseEndpoint(controller.endpoint));
    try {
      const { token } = await controller.issueEnrollment("team-a");
      const outcomes = await Promise.all(Array.from({ length: 50 }, async () => {
        const key = NodePrivateKey.generate();
        const challenge = await attest(client, key);
        try {
          const r = await client.challengeNode({
            challengeId: challenge.challengeId,
            signature: key.sign(
              challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
            ),
            proof: { case: "bootstrapProof", value: token },
          });
          return r.nodeId;
        } catch (error) {
          return fromConnectError(error).code;
        }
      }));
      const winners = outcomes.filter((o) => o.startsWith("n-"));
      assert.equal(winners.length, 1, JSON.stringify(outcomes));
      assert.deepEqual(
        new Set(outcomes.filter((o) => !o.startsWith("n-"))),
        new Set(["ENROLL_TOKEN_REDEEMED"]),
      );
      const operator = await controller.operatorToken("team-a");
      const hosts =
        (await (await controller.api("/v1/edge/hosts", { token: operator })).json()).hosts;
      assert.deepEqual(hosts.map((h: { node_id: string }) => h.node_id), winners);
    } finally {
      client.close();
      await controller.stop();
    }
  },
);
