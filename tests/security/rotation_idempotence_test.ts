// Key rotation on the controller is idempotent and has no time limit (issue 9, review of items 5
// and 10): a second attempt of the same rotation, wherever and whenever it arrives, answers as a
// finish of the committed one. It is never refused as a "conflict" (the daemon would then drop
// the only copy of the key the controller now holds), and an expired node token does not stop a
// host that was off for weeks from finishing. Real services on a real database, in process.
import assert from "node:assert/strict";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { sealEnvelope } from "../../shared/crypto/envelope.ts";
import { rotationBytes } from "../../shared/crypto/signed_bytes.ts";
import { AegisError } from "../../shared/errors.ts";
import type { SealNodeEnvelope } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { Db } from "../../controller/store/db.ts";
import { loadOrCreateSigningKey } from "../../controller/app/signing_key.ts";
import { REFRESH_GRACE_SECS, TokenAuthority } from "../../controller/app/tokens.ts";
import { NodeAuthenticator, type UnaryBody } from "../../controller/app/node_auth.ts";
import { DaemonRepository } from "../../controller/app/daemons.ts";
import { EdgeHub } from "../../controller/app/edge_sessions.ts";
import { KeyRotationService } from "../../controller/app/rotation.ts";
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";

const DAY_MS = 86400_000;
const TTL_SECS = 3600;

/**
 * The real authenticator, with one seam: a step to run after the next envelope was authenticated
 * and before its handler goes on. That is where another relay's attempt can commit meanwhile.
 */
class InterleavingAuthenticator extends NodeAuthenticator {
  afterNextOpen?: () => Promise<unknown>;

  override async openUnary(envelope: SealNodeEnvelope, expected: UnaryBody, options = {}) {
    const opened = await super.openUnary(envelope, expected, options);
    const step = this.afterNextOpen;
    this.afterNextOpen = undefined;
    await step?.();
    return opened;
  }
}

interface Node {
  nodeId: string;
  key: NodePrivateKey;
  token: string;
}

async function controller(clock: () => Date) {
  const store = await testDatabase();
  const db = await store.open();
  const dir = await Deno.makeTempDir({ prefix: "aegis-rot-" });
  const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/k.jwk`), "test", clock);
  const auth = new InterleavingAuthenticator(db, tokens, clock);
  const hub = new EdgeHub({
    auth,
    daemons: new DaemonRepository(db, clock),
    clock,
    relayId: "relay-a",
    heartbeatIntervalSecs: 30,
    log: () => {},
  });
  const rotation = new KeyRotationService(db, auth, tokens, hub, undefined, clock, {
    nodeTokenTtlSecs: TTL_SECS,
    overlapMs: 60_000,
  });
  return {
    db,
    tokens,
    auth,
    rotation,
    /** A node as enrollment leaves it: its key, and a token bound to that key. */
    async enroll(key = NodePrivateKey.generate()): Promise<Node> {
      const nodeId = `n-${crypto.randomUUID().slice(0, 8)}`;
      const fingerprint = await key.publicKey.fingerprint();
      const issued = await tokens.issueNode({
        nodeId,
        tenantId: "team-a",
        keyFingerprint: fingerprint,
        ttlSecs: TTL_SECS,
      });
      await db.query(
        `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
           status_since, token_jti, token_expires_at)
         VALUES ($1, 'team-a', $1, $2, $3, 'pending', $4, $5, $6)`,
        [
          nodeId,
          key.publicKey.toBase64(),
          fingerprint,
          clock(),
          issued.claims.jti,
          new Date(issued.claims.exp * 1000),
        ],
      );
      return { nodeId, key, token: issued.token };
    },
    async cleanup() {
      await store.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** What `aegis edge keys rotate` sends: a fresh nonce, signed by the old key and the new one. */
function rotationRequest(node: Node, newKey: NodePrivateKey, now: Date): SealNodeEnvelope {
  const nonce = randomBytes(16);
  const possession = newKey.sign(
    rotationBytes(node.nodeId, node.key.publicKey.bytes, newKey.publicKey.bytes, nonce),
  );
  return sealEnvelope({
    key: node.key,
    token: node.token,
    nodeId: node.nodeId,
    streamNonce: nonce,
    seq: 1n,
    now,
    body: {
      case: "rotate",
      value: { newPublicKey: newKey.publicKey.bytes, newKeySignature: possession } as never,
    },
  });
}

function describeRequest(node: Node, now: Date): SealNodeEnvelope {
  return sealEnvelope({
    key: node.key,
    token: node.token,
    nodeId: node.nodeId,
    streamNonce: randomBytes(16),
    seq: 1n,
    now,
    body: { case: "describe", value: {} as never },
  });
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof AegisError) return error.code;
    throw error;
  }
}

async function currentKey(db: Db, nodeId: string): Promise<string> {
  const rows = await db.query<{ key_fingerprint: string }>(
    `SELECT key_fingerprint FROM edge_daemons WHERE node_id = $1`,
    [nodeId],
  );
  return rows[0].key_fingerprint;
}

Deno.test(
  `[${TEST_DB_KIND}] a rotation authenticated before another relay committed the same rotation answers as a finish`,
  async () => {
    const ctl = await controller(() => new Date());
    try {
      const node = await ctl.enroll();
      const newKey = NodePrivateKey.generate();
      const newFingerprint = await newKey.publicKey.fingerprint();
      // Relay B has authenticated its attempt (the old key is still current); relay A's attempt,
      // whose answer the host never got, commits meanwhile.
      let first: { fingerprint: string } | undefined;
      ctl.auth.afterNextOpen = async () => {
        first = await ctl.rotation.rotate(rotationRequest(node, newKey, new Date()));
      };
      const second = await ctl.rotation.rotate(rotationRequest(node, newKey, new Date()));
      assert.equal(first?.fingerprint, newFingerprint, "the first attempt committed");
      assert.equal(second.fingerprint, newFingerprint);
      assert.equal(await currentKey(ctl.db, node.nodeId), newFingerprint);
      // The token the finish answered with is the node's, for the new key.
      const rotated = { nodeId: node.nodeId, key: newKey, token: second.token };
      assert.equal(
        await code(ctl.auth.openUnary(describeRequest(rotated, new Date()), "describe")),
        "ok",
      );
      // And an identical attempt after the commit (sequential) is a finish too.
      const third = await ctl.rotation.rotate(rotationRequest(node, newKey, new Date()));
      assert.equal(third.fingerprint, newFingerprint);
      const rows = await ctl.db.query<{ rotations: number }>(
        `SELECT rotations FROM edge_daemons WHERE node_id = $1`,
        [node.nodeId],
      );
      assert.equal(Number(rows[0].rotations), 1, "one rotation, finished three times");
    } finally {
      await ctl.cleanup();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] concurrent attempts of one rotation all succeed, with one commit`,
  async () => {
    const ctl = await controller(() => new Date());
    try {
      const node = await ctl.enroll();
      const newKey = NodePrivateKey.generate();
      const results = await Promise.all(
        Array.from(
          { length: 6 },
          () => code(ctl.rotation.rotate(rotationRequest(node, newKey, new Date()))),
        ),
      );
      assert.deepEqual(results, Array(6).fill("ok"));
      assert.equal(await currentKey(ctl.db, node.nodeId), await newKey.publicKey.fingerprint());
    } finally {
      await ctl.cleanup();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a rotation onto a key another node holds is KEY_IN_USE, not CONFLICT`,
  async () => {
    const ctl = await controller(() => new Date());
    try {
      const node = await ctl.enroll();
      const other = await ctl.enroll();
      const refused = await code(ctl.rotation.rotate(rotationRequest(node, other.key, new Date())));
      assert.equal(refused, "KEY_IN_USE");
      assert.equal(await currentKey(ctl.db, node.nodeId), await node.key.publicKey.fingerprint());
    } finally {
      await ctl.cleanup();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] an interrupted rotation is finished weeks later, past the token's refresh grace`,
  async () => {
    let now = new Date(Date.now() - 40 * DAY_MS);
    const ctl = await controller(() => now);
    try {
      const node = await ctl.enroll();
      const newKey = NodePrivateKey.generate();
      // The rotation commits; its answer never reaches the host, which is then off for 40 days.
      await ctl.rotation.rotate(rotationRequest(node, newKey, now));
      now = new Date();
      const oldExp = decodeNodeToken(node.token).exp;
      assert.ok(now.getTime() / 1000 > oldExp + REFRESH_GRACE_SECS, "past the refresh grace");

      // Neither the old token nor the old key does anything else any more.
      assert.equal(
        await code(ctl.auth.authenticateByKey(node.token, node.key.publicKey)),
        "NODE_TOKEN_EXPIRED",
      );
      assert.notEqual(await code(ctl.auth.openUnary(describeRequest(node, now), "describe")), "ok");

      // The finish, signed by the new key over the recorded rotation, works.
      const finished = await ctl.rotation.rotate(rotationRequest(node, newKey, now));
      assert.equal(finished.fingerprint, await newKey.publicKey.fingerprint());
      const rotated = { nodeId: node.nodeId, key: newKey, token: finished.token };
      assert.equal(await code(ctl.auth.openUnary(describeRequest(rotated, now), "describe")), "ok");

      // A token past the grace for the current key starts no new rotation, and refreshes nothing.
      now = new Date(Date.now() - 40 * DAY_MS);
      const stale = await ctl.tokens.issueNode({
        nodeId: node.nodeId,
        tenantId: "team-a",
        keyFingerprint: finished.fingerprint,
        ttlSecs: TTL_SECS,
      });
      now = new Date();
      const staleNode = { nodeId: node.nodeId, key: newKey, token: stale.token };
      const another = NodePrivateKey.generate();
      assert.equal(
        await code(ctl.rotation.rotate(rotationRequest(staleNode, another, now))),
        "NODE_TOKEN_EXPIRED",
      );
      assert.equal(
        await code(ctl.auth.authenticateByKey(stale.token, newKey.publicKey)),
        "NODE_TOKEN_EXPIRED",
      );
    } finally {
      await ctl.cleanup();
    }
  },
);
