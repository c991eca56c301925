import assert from "node:assert/strict";
import type { Queryable } from "../../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../../tests/support/db.ts";
import type { CallEvent, ToolCallService } from "../tool_calls.ts";
import type { Operator } from "../operators.ts";
import { FleetDispatcher } from "./dispatcher.ts";
import { parseErrorPolicy, parseMode } from "./policy.ts";
import type { FleetEvent } from "../../../shared/fleet_events.ts";
import { AegisError } from "../../../shared/errors.ts";

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

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher keys.rotate is ok only when the controller saw the key change`, async () => {
  const test = await testDatabase();
  const db = await test.open();
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
    await test.cleanup();
  }
});

/** Hosts that answer when the test opens their gate; `offline` ones refuse at once. */
function gatedHosts(offline: Set<string>) {
  const gates = new Map<string, PromiseWithResolvers<void>>();
  const gate = (nodeId: string) => {
    if (!gates.has(nodeId)) gates.set(nodeId, Promise.withResolvers<void>());
    return gates.get(nodeId)!;
  };
  const started: string[] = [];
  const calls = {
    async *execute(_operator: Operator, nodeId: string): AsyncGenerator<CallEvent> {
      started.push(nodeId);
      if (offline.has(nodeId)) {
        throw new AegisError("NODE_OFFLINE", `host ${nodeId} is not connected`);
      }
      await gate(nodeId).promise;
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
  return { calls, open: (nodeId: string) => gate(nodeId).resolve(), started };
}

function line(event: FleetEvent): string {
  return event.type === "wave"
    ? `wave ${event.wave} of ${event.size}`
    : event.type === "result"
    ? `${event.name} ${event.status} (wave ${event.wave})`
    : event.type === "summary"
    ? `summary ${event.status}`
    : event.type;
}

function request(mode: string, onError: string) {
  return {
    operation: "exec" as const,
    target: "all",
    mode: parseMode(mode),
    onError: parseErrorPolicy(onError),
    deadlineSecs: 10,
    arguments: {},
  };
}

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher rolling=2 keeps two running: a finished host's slot goes to the next at once`, async () => {
  const test = await testDatabase();
  const db = await test.open();
  try {
    for (const n of [1, 2, 3, 4, 5]) await insertHost(db, `n-${n}`, `h-${n}`);
    const { calls, open, started } = gatedHosts(new Set());
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => new Date());
    const events = fleet.run(admin, request("rolling=2", "continue"));
    const seen: string[] = [];
    const pull = async () => {
      const next = await events.next();
      if (!next.done) seen.push(line(next.value));
      return next;
    };
    await pull(); // operation
    await pull(); // wave 1, its first host started
    open("n-2"); // the second host finishes first...
    await pull();
    assert.equal(seen.at(-1), "h-2 ok (wave 1)");
    // ...and its slot goes to the third while the first still runs (lock-step waves would wait).
    await pull();
    assert.equal(seen.at(-1), "wave 2 of 2");
    assert.deepEqual(started, ["n-1", "n-2", "n-3"]);
    for (const n of [1, 3, 4, 5]) open(`n-${n}`);
    while (!(await pull()).done);
    assert.ok(seen.includes("h-2 ok (wave 1)"));
    assert.ok(seen.includes("wave 2 of 2") && seen.includes("wave 3 of 1"));
    assert.ok(seen.indexOf("h-2 ok (wave 1)") < seen.indexOf("wave 2 of 2"));
    assert.equal(seen.at(-1), "summary done");
    const rows = await db.query<{ name: string; wave: number; status: string }>(
      `SELECT name, wave, status FROM fleet_results ORDER BY name`,
    );
    assert.deepEqual(rows.map((r) => `${r.name}:${r.wave}:${r.status}`), [
      "h-1:1:ok",
      "h-2:1:ok",
      "h-3:2:ok",
      "h-4:2:ok",
      "h-5:3:ok",
    ]);
  } finally {
    await test.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher stop-after=2 starts nothing after the second failure and skips the rest`, async () => {
  const test = await testDatabase();
  const db = await test.open();
  try {
    for (const n of [1, 2, 3, 4, 5, 6]) await insertHost(db, `n-${n}`, `h-${n}`);
    const { calls, started } = gatedHosts(new Set(["n-1", "n-2", "n-3", "n-4", "n-5", "n-6"]));
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => new Date());
    const events: FleetEvent[] = [];
    for await (const event of fleet.run(admin, request("rolling=1", "stop-after=2"))) {
      events.push(event);
    }
    assert.deepEqual(started, ["n-1", "n-2"]);
    const summary = events.at(-1);
    assert.ok(summary?.type === "summary");
    assert.equal(summary.status, "stopped");
    assert.deepEqual(summary.counts, { ok: 0, failed: 0, timed_out: 0, offline: 2, skipped: 4 });
    const rows = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fleet_results WHERE status = 'skipped' AND detail LIKE 'stopped after 2%'`,
    );
    assert.equal(rows[0].n, 4);
  } finally {
    await test.cleanup();
  }
});
