import assert from "node:assert/strict";
import { openDb, type Queryable } from "../../store/db.ts";
import type { CallEvent, ToolCallService } from "../tool_calls.ts";
import type { Operator } from "../operators.ts";
import { FleetDispatcher } from "./dispatcher.ts";
import { parseErrorPolicy, parseMode } from "./policy.ts";
import type { FleetEvent } from "../../../shared/fleet_events.ts";

const admin: Operator = {
  iss: "test",
  sub: "admin@test",
  exp: 0,
  tenant_id: "t-1",
  aegis_role: "admin",
  tenants: [],
};

async function insertHost(db: Queryable, nodeId: string, name: string): Promise<void> {
  await db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
       status_since) VALUES ($1, 't-1', $2, $1, 'SHA256:old', 'connected', now())`,
    [nodeId, name],
  );
}

/**
 * The hosts' side of node.rotate_key as the controller sees it: every host answers exit 0, but
 * only an honest one's new key reaches the controller's record (as the real rotation RPC does).
 */
function hostsThatReportSuccess(db: Queryable, honest: Set<string>): ToolCallService {
  return {
    async *execute(_operator: Operator, nodeId: string): AsyncGenerator<CallEvent> {
      if (honest.has(nodeId)) {
        await db.query(
          `UPDATE edge_daemons SET key_fingerprint = 'SHA256:new' WHERE node_id = $1`,
          [nodeId],
        );
      }
      yield {
        type: "exit",
        exit_code: 0,
        signal: "",
        timed_out: false,
        truncated: false,
        duration_ms: 1,
        result_json: "",
      } as CallEvent;
    },
  } as unknown as ToolCallService;
}

Deno.test("FleetDispatcher keys.rotate is ok only when the controller saw the key change", async () => {
  const db = await openDb({ memory: true });
  try {
    await insertHost(db, "n-honest", "a");
    await insertHost(db, "n-liar", "b");
    const fleet = new FleetDispatcher(
      db,
      hostsThatReportSuccess(db, new Set(["n-honest"])),
      "relay-test",
      () => new Date(),
    );
    const events: FleetEvent[] = [];
    for await (
      const event of fleet.run(admin, {
        operation: "keys.rotate",
        target: "all",
        mode: parseMode("parallel"),
        onError: parseErrorPolicy("continue"),
        deadlineSecs: 10,
        arguments: {},
      })
    ) events.push(event);
    const results = new Map(
      events.flatMap((e) => e.type === "result" ? [[e.node_id, e] as const] : []),
    );
    assert.equal(results.get("n-honest")?.status, "ok");
    assert.equal(results.get("n-liar")?.status, "failed");
    assert.match(results.get("n-liar")!.detail, /controller still holds key SHA256:old/);
    const summary = events.at(-1);
    assert.equal(summary?.type === "summary" && summary.counts.failed, 1);
  } finally {
    await db.close();
  }
});
