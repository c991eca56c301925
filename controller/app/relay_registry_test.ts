import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { RELAY_STALE_MS, RelayRegistry } from "./relay_registry.ts";

Deno.test(
  `[${TEST_DB_KIND}] a relay whose registration goes stale has its running calls ended`,
  async () => {
    const db = await testDatabase();
    try {
      const store = await db.open();
      let now = new Date("2030-01-01T00:00:00Z");
      const clock = () => now;
      const logs: string[] = [];
      const dead = new RelayRegistry(store, "relay-dead", "http://127.0.0.1:1", clock, () => {});
      const live = new RelayRegistry(
        store,
        "relay-live",
        "http://127.0.0.1:2",
        clock,
        (m) => logs.push(m),
      );
      await dead.announce();
      const call = (id: string, relay: string, status: string) =>
        store.query(
          `INSERT INTO tool_calls (call_id, node_id, tenant_id, tool, summary, requested_by,
                                   relay_id, status, started_at)
           VALUES ($1, 'n-1', 't', 'cmd.run', 'sleep 30', 'op', $2, $3, $4)`,
          [id, relay, status, now],
        );
      await call("c-running", "relay-dead", "running");
      await call("c-done", "relay-dead", "ok");
      await call("c-other", "relay-live", "running");

      // Within the stale window nothing happens, at the edge of it neither.
      now = new Date(now.getTime() + RELAY_STALE_MS);
      await live.announce();
      const status = async () =>
        Object.fromEntries(
          (await store.query<{ call_id: string; status: string }>(
            "SELECT call_id, status FROM tool_calls ORDER BY call_id",
          )).map((r) => [r.call_id, r.status]),
        );
      assert.deepEqual(await status(), {
        "c-done": "ok",
        "c-other": "running",
        "c-running": "running",
      });
      assert.equal(await live.endpointOf("relay-dead"), "http://127.0.0.1:1");

      now = new Date(now.getTime() + 1);
      await live.announce();
      assert.equal(await live.endpointOf("relay-dead"), undefined);
      assert.deepEqual(await status(), {
        "c-done": "ok",
        "c-other": "running",
        "c-running": "interrupted",
      });
      const [row] = await store.query<{ error: string; finished_at: Date }>(
        "SELECT error, finished_at FROM tool_calls WHERE call_id = 'c-running'",
      );
      assert.equal(row.error, "the relay running the call stopped answering");
      assert.deepEqual(row.finished_at, now);
      assert.deepEqual(logs, ["relay registry: relay-dead went away; 1 call(s) ended"]);
    } finally {
      await db.cleanup();
    }
  },
);
