import assert from "node:assert/strict";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { DaemonRepository } from "./daemons.ts";

const BEFORE = new Date("2026-01-01T00:00:00.123Z");

async function insertNode(store: Queryable, nodeId: string) {
  await store.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
                               status_since, last_heartbeat_at)
     VALUES ($1, 't', $1, $1, 'SHA256:k', 'pending', $2, $2)`,
    [nodeId, BEFORE],
  );
}

async function statuses(store: Queryable) {
  const rows = await store.query<{ node_id: string; status: string; relay_id: string | null }>(
    "SELECT node_id, status, relay_id FROM edge_daemons ORDER BY node_id",
  );
  return Object.fromEntries(rows.map((r) => [r.node_id, `${r.status}@${r.relay_id}`]));
}

Deno.test(`[${TEST_DB_KIND}] disconnects of many streams are one UPDATE, each clearing only its own connection`, async () => {
  const db = await testDatabase();
  try {
    const store = await db.open();
    const nodes = Array.from({ length: 40 }, (_, i) => `n-${String(i).padStart(2, "0")}`);
    for (const node of nodes) await insertNode(store, node);
    let now = new Date("2026-01-01T00:01:00.001Z");
    const daemons = new DaemonRepository(store, () => now);
    const info = (at: Date, relayId = "r1") => ({
      at,
      relayId,
      remoteAddr: "127.0.0.1",
      capabilities: {},
      labels: {},
    });
    const first = new Date("2026-01-01T00:01:00.001Z");
    for (const node of nodes) assert.equal(await daemons.markConnected(node, info(first)), true);

    // n-00 says Hello again on this relay before its old stream's end is written, n-01 moved to
    // another relay: neither old end may mark them Disconnected.
    const second = new Date("2026-01-01T00:01:05.777Z");
    await daemons.markConnected("n-00", info(second));
    await daemons.markConnected("n-01", info(second, "r2"));

    let statements = 0;
    const counted: Queryable = {
      query: (sql, params) => {
        statements++;
        return store.query(sql, params);
      },
    };
    now = new Date("2026-01-01T00:01:10Z");
    const writer = new DaemonRepository(counted, () => now);
    await Promise.all(nodes.map((node) => writer.markDisconnected(node, "r1", first)));
    assert.equal(statements, 1);

    const after = await statuses(store);
    assert.equal(after["n-00"], "connected@r1");
    assert.equal(after["n-01"], "connected@r2");
    for (const node of nodes.slice(2)) assert.equal(after[node], "disconnected@r1", node);
    const since = await store.query<{ status_since: Date }>(
      "SELECT status_since FROM edge_daemons WHERE node_id = 'n-05'",
    );
    assert.equal(since[0].status_since.toISOString(), now.toISOString());

    // The new stream's own end does clear it.
    await writer.markDisconnected("n-00", "r1", second);
    assert.equal((await statuses(store))["n-00"], "disconnected@r1");
  } finally {
    await db.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] releaseRelay marks every stream of a stopping relay in one statement`, async () => {
  const db = await testDatabase();
  try {
    const store = await db.open();
    for (const node of ["a", "b", "c"]) await insertNode(store, node);
    const daemons = new DaemonRepository(store, () => new Date("2026-01-01T00:02:00Z"));
    const info = (relayId: string) => ({
      relayId,
      remoteAddr: "127.0.0.1",
      capabilities: {},
      labels: {},
    });
    await daemons.markConnected("a", info("r1"));
    await daemons.markConnected("b", info("r1"));
    await daemons.markConnected("c", info("r2"));
    assert.equal(await daemons.releaseRelay("r1"), 2);
    assert.deepEqual(await statuses(store), {
      a: "disconnected@r1",
      b: "disconnected@r1",
      c: "connected@r2",
    });
  } finally {
    await db.cleanup();
  }
});
