// A rotation retried after the controller committed it must never cost the host its identity
// (review of issue 9, item 5): the retry answers as a finish, whatever relay it reaches and
// whenever; and the daemon drops node.key.new only when the controller provably still holds the
// old key. Real controllers, real daemons, real CLI.
import assert from "node:assert/strict";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { AGENT_MAIN, eventually, runDeno } from "../support/processes.ts";
import type { Host } from "../support/host.ts";
import {
  credentials,
  describeWith,
  edgeFile,
  editConfig,
  enrolledHost,
  opts,
} from "./node_support.ts";

async function pendingKey(host: Host): Promise<NodePrivateKey | undefined> {
  try {
    return NodePrivateKey.fromPem(await Deno.readTextFile(edgeFile(host, "node.key.new")));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** node.key is `key`, the controller takes it, and a daemon connects with it. */
async function assertWorkingIdentity(
  controller: ControllerProcess,
  host: Host,
  key: NodePrivateKey,
): Promise<void> {
  const creds = await credentials(host);
  assert.ok(creds.key.publicKey.equals(key.publicKey), "node.key is the controller's key");
  assert.equal(await describeWith(controller, creds), "ok");
  assert.equal(await pendingKey(host), undefined, "no rotation left pending");
  const daemon = host.startDaemon();
  await daemon.waitFor(/stream connected/, 30_000);
  assert.doesNotMatch(daemon.stderr, /refused this node/);
}

Deno.test(
  `[${TEST_DB_KIND}] a rotation committed on the first endpoint whose answer was lost finishes on the next`,
  opts,
  async () => {
    // The controller commits the first rotation, then fails to answer it (once).
    const controller = await startControllerProcess({
      faults: "controller.rotate.after_commit:once",
    });
    const { host } = await enrolledHost(controller);
    try {
      // The same controller twice: the second "relay" gets a freshly sealed attempt.
      await editConfig(host, (config) => {
        config.cluster.endpoints = [controller.endpoint, controller.endpoint];
      });
      const before = await credentials(host);
      const rotated = await host.aegis(["edge", "keys", "rotate"]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const after = await credentials(host);
      assert.ok(!after.key.publicKey.equals(before.key.publicKey), "a new key");
      assert.equal(await describeWith(controller, before), "NODE_TOKEN_INVALID");
      await assertWorkingIdentity(controller, host, after.key);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a rotation onto another node's key is KEY_IN_USE; the pending key goes only because the controller holds the old one`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host } = await enrolledHost(controller);
    const { host: other } = await enrolledHost(controller);
    try {
      const before = await credentials(host);
      // A pending rotation whose new key is, somehow, another live node's.
      await Deno.writeTextFile(
        edgeFile(host, "node.key.new"),
        await Deno.readTextFile(edgeFile(other, "node.key")),
        { mode: 0o600 },
      );
      const refused = await host.aegis(["edge", "keys", "rotate"]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /already the key of a node/);
      assert.match(refused.stderr, /it makes a fresh key/, "KEY_IN_USE, with its hint");
      assert.equal(await pendingKey(host), undefined, "the unusable key was dropped");
      assert.equal(await describeWith(controller, before), "ok", "the old identity still works");
      // The next rotation is an ordinary one, with a fresh key.
      const again = await host.aegis(["edge", "keys", "rotate"]);
      assert.equal(again.code, 0, again.stderr);
      await assertWorkingIdentity(controller, host, (await credentials(host)).key);
    } finally {
      await host.cleanup();
      await other.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] relay A commits while relay B's attempt of the same rotation waits on the row: B finishes it`,
  { ...opts, ignore: TEST_DB_KIND !== "postgres" },
  async () => {
    // Two relays on one PostgreSQL database; the host knows both.
    const db = await testDatabase();
    const shared = await Deno.makeTempDir({ prefix: "aegis-race-" });
    const common = { db, signingKeyFile: `${shared}/signing-key.jwk` };
    const relays: ControllerProcess[] = [];
    let host: Host | undefined;
    const observer = await db.open();
    try {
      relays.push(await startControllerProcess({ ...common, nodeName: "relay-a" }));
      relays.push(await startControllerProcess({ ...common, nodeName: "relay-b" }));
      const [relayA, relayB] = relays;
      const enrolled = await enrolledHost(relayA);
      host = enrolled.host;
      await editConfig(host, (config) => {
        config.cluster.endpoints = [relayA.endpoint, relayB.endpoint];
      });
      const before = await credentials(host);

      // Someone holds the node's row (a slow transaction), so relay A's attempt stalls until
      // the client's deadline fires; the client then sends a fresh attempt to relay B.
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      const holding = observer.transaction(async (tx) => {
        await tx.query(`SELECT 1 FROM edge_daemons WHERE node_id = $1 FOR UPDATE`, [
          enrolled.nodeId,
        ]);
        await released;
      });
      const rotation = runDeno(AGENT_MAIN, ["edge", "keys", "rotate"], { HOME: host.home });
      const waiting = async () => {
        const rows = await observer.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return rows[0].n;
      };
      // Relay A waits first; after the client's 15 s deadline, relay B waits too.
      await eventually(async () => (await waiting()) >= 2 || undefined, "both attempts", 30_000);
      const newKey = await pendingKey(host);
      assert.ok(newKey, "the rotation is pending");
      release();
      await holding;
      const out = await rotation;
      assert.equal(out.code, 0, out.stderr);
      assert.equal(await describeWith(relayA, before), "NODE_TOKEN_INVALID", "committed");
      await assertWorkingIdentity(relayB, host, newKey);
    } finally {
      await observer.close().catch(() => {});
      await host?.cleanup();
      for (const relay of relays) await relay.stop();
      await db.cleanup();
      await Deno.remove(shared, { recursive: true }).catch(() => {});
    }
  },
);
