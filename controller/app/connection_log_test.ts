import assert from "node:assert/strict";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { DaemonRepository } from "./daemons.ts";
import { connectionHistory, CONNECTIONS_KEPT_PER_NODE } from "./connection_log.ts";

const START = Date.parse("2026-01-01T00:00:00.000Z");
const at = (secs: number) => new Date(START + secs * 1000);

async function insertNode(store: Queryable, nodeId: string) {
  await store.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
                               status_since)
     VALUES ($1, 't', $1, $1, 'SHA256:k', 'pending', $2)`,
    [nodeId, at(0)],
  );
}

const info = (when: Date, relayId = "r1", version = "1.0.0") => ({
  at: when,
  relayId,
  remoteAddr: "203.0.113.7:4242",
  capabilities: { agent_version: version },
  labels: {},
});

Deno.test(`[${TEST_DB_KIND}] the connection log records each stream's start and end, in the statements that mark them`, async () => {
  const db = await testDatabase();
  try {
    const store = await db.open();
    await insertNode(store, "n1");
    await insertNode(store, "n2");
    let now = at(10);
    const daemons = new DaemonRepository(store, () => now);

    assert.equal(await daemons.markConnected("n1", info(at(1))), true);
    assert.equal(await daemons.markConnected("n2", info(at(1))), true);
    const [row] = await connectionHistory(store, "n1");
    assert.deepEqual(row, {
      connected_at: at(1),
      disconnected_at: null,
      relay_id: "r1",
      remote_addr: "203.0.113.7:4242",
      agent_version: "1.0.0",
    });

    // n1 says Hello again elsewhere before its first stream's end is written: that end closes
    // the first row (and only it), though the record stays Connected to the new stream.
    assert.equal(await daemons.markConnected("n1", info(at(2), "r2", "1.1.0")), true);
    now = at(3);
    await daemons.markDisconnected("n1", "r1", at(1));
    const n1 = await connectionHistory(store, "n1");
    assert.deepEqual(n1.map((r) => [r.relay_id, r.agent_version, r.disconnected_at]), [
      ["r2", "1.1.0", null],
      ["r1", "1.0.0", at(3)],
    ]);
    assert.equal((await daemons.get("n1"))!.status, "connected");

    // A relay that restarts closes what it held; the other relay's streams stay open.
    now = at(4);
    assert.equal(await daemons.releaseRelay("r1"), 1);
    assert.deepEqual((await connectionHistory(store, "n2"))[0].disconnected_at, at(4));
    assert.equal((await connectionHistory(store, "n1"))[0].disconnected_at, null);

    // A revoked node says no Hello, and so gets no row.
    await store.query("UPDATE edge_daemons SET status = 'revoked' WHERE node_id = 'n2'");
    assert.equal(await daemons.markConnected("n2", info(at(5))), false);
    assert.equal((await connectionHistory(store, "n2")).length, 1);
  } finally {
    await db.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] the connection log keeps the newest ${CONNECTIONS_KEPT_PER_NODE} rows per node`, async () => {
  const db = await testDatabase();
  try {
    const store = await db.open();
    await insertNode(store, "busy");
    await insertNode(store, "calm");
    const daemons = new DaemonRepository(store, () => at(1000));
    await daemons.markConnected("calm", info(at(1)));
    const total = CONNECTIONS_KEPT_PER_NODE + 7;
    for (let i = 1; i <= total; i++) {
      assert.equal(await daemons.markConnected("busy", info(at(i))), true);
      await daemons.markDisconnected("busy", "r1", at(i));
    }
    await daemons.drain();
    const rows = await store.query<{ n: number; first: Date; last: Date }>(
      `SELECT count(*)::int AS n, min(connected_at) AS first, max(connected_at) AS last
         FROM edge_connections WHERE node_id = 'busy'`,
    );
    assert.deepEqual(rows[0], {
      n: CONNECTIONS_KEPT_PER_NODE,
      first: at(total - CONNECTIONS_KEPT_PER_NODE + 1),
      last: at(total),
    });
    // Another node's log is its own.
    assert.equal((await connectionHistory(store, "calm")).length, 1);
    // The page's view: newest first, as many as asked.
    const shown = await connectionHistory(store, "busy", 20);
    assert.equal(shown.length, 20);
    assert.deepEqual(shown[0].connected_at, at(total));
    assert.deepEqual(shown[0].disconnected_at, at(1000));
  } finally {
    await db.cleanup();
  }
});
