import assert from "node:assert/strict";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { DaemonRepository } from "./daemons.ts";

Deno.test(`[${TEST_DB_KIND}] heartbeat() coalesces the beats of many nodes into one UPDATE`, async () => {
  const db = await testDatabase();
  try {
    const store = await db.open();
    const before = new Date("2026-01-01T00:00:00Z");
    const nodes = Array.from({ length: 50 }, (_, i) => `n-${i}`);
    for (const node of nodes) {
      await store.query(
        `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
                                   status_since, last_heartbeat_at)
         VALUES ($1, 't', $1, $1, 'SHA256:k', $2, $3, $3)`,
        [node, node === "n-0" ? "disconnected" : "connected", before],
      );
    }
    let statements = 0;
    const counted: Queryable = {
      query: (sql, params) => {
        statements++;
        return store.query(sql, params);
      },
    };
    let now = new Date("2026-01-01T00:00:30Z");
    const daemons = new DaemonRepository(counted, () => now);
    const beats = nodes.map((node) => daemons.heartbeat(node));
    now = new Date("2026-01-01T00:00:31Z");
    beats.push(daemons.heartbeat("n-1")); // twice in one batch: the later beat counts
    await Promise.all(beats);
    assert.equal(statements, 1);

    const rows = await store.query<{ node_id: string; last_heartbeat_at: Date }>(
      "SELECT node_id, last_heartbeat_at FROM edge_daemons",
    );
    const at = new Map(rows.map((r) => [r.node_id, r.last_heartbeat_at.toISOString()]));
    // A node no longer connected keeps its last beat: a late heartbeat does not revive it.
    assert.equal(at.get("n-0"), before.toISOString());
    assert.equal(at.get("n-1"), "2026-01-01T00:00:31.000Z");
    assert.equal(at.get("n-2"), "2026-01-01T00:00:30.000Z");
  } finally {
    await db.cleanup();
  }
});
