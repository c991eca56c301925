import assert from "node:assert/strict";
import type { Queryable } from "../../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../../tests/support/db.ts";
import type { CallEvent, ToolCallService } from "../tool_calls.ts";
import type { Operator } from "../operators.ts";
import { FLEET_RUNNING_PER_TENANT, FleetDispatcher } from "./dispatcher.ts";
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

async function insertLabelled(
  db: Queryable,
  host: {
    nodeId: string;
    name: string;
    tenant?: string;
    tags?: string[];
    labels?: Record<string, string>;
    status?: string;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
       status_since, tags, labels) VALUES ($1, $2, $3, $1, 'SHA256:old', $4, now(), $5, $6)`,
    [
      host.nodeId,
      host.tenant ?? "t-1",
      host.name,
      host.status ?? "disconnected",
      host.tags ?? [],
      JSON.stringify(host.labels ?? {}),
    ],
  );
}

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher preview selects exactly what run() then runs on`, async () => {
  const test = await testDatabase();
  const db = await test.open();
  try {
    await insertLabelled(db, { nodeId: "n-a1", name: "eu-web", labels: { region: "eu" } });
    await insertLabelled(db, { nodeId: "n-a2", name: "eu-db", labels: { region: "eu" } });
    await insertLabelled(db, { nodeId: "n-a3", name: "us-web", labels: { region: "us" } });
    await insertLabelled(db, {
      nodeId: "n-a4",
      name: "eu-gone",
      labels: { region: "eu" },
      status: "revoked",
    });
    await insertLabelled(db, {
      nodeId: "n-b1",
      name: "other-tenant-eu",
      tenant: "t-2",
      labels: { region: "eu" },
    });
    const { calls, started } = gatedHosts(new Set(["n-a1", "n-a2", "n-a3", "n-a4", "n-b1"]));
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => new Date());
    const preview = await fleet.preview(admin, "labels=region:eu");
    assert.deepEqual(preview.hosts.map((h) => h.node_id), ["n-a2", "n-a1"]);
    assert.equal(preview.source, "self-reported");
    assert.ok(preview.note);
    assert.equal(preview.description, "labels=region:eu");
    for await (
      const _ of fleet.run(admin, {
        ...request("parallel", "continue"),
        target: "labels=region:eu",
      })
    ) {
      // drained
    }
    assert.deepEqual([...started].sort(), preview.hosts.map((h) => h.node_id).sort());
    // Nothing matching is an answer for a preview (run() refuses it).
    assert.deepEqual((await fleet.preview(admin, "tags=AnyOf(nope)")).hosts, []);
    await assert.rejects(
      () => fleet.preview(admin, "labels=region"),
      (e) => e instanceof AegisError && e.code === "INVALID_ARGUMENT",
    );
    await assert.rejects(
      () => fleet.preview(admin, "all", "t-2"),
      (e) => e instanceof AegisError && e.code === "FORBIDDEN",
    );
  } finally {
    await test.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher start() runs to the end detached and list() counts its results`, async () => {
  const test = await testDatabase();
  const db = await test.open();
  try {
    for (const n of [1, 2, 3]) await insertHost(db, `n-${n}`, `h-${n}`);
    await insertLabelled(db, { nodeId: "n-b1", name: "b", tenant: "t-2" });
    const { calls, open } = gatedHosts(new Set(["n-3"]));
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => new Date(clock += 1000));
    const logs: string[] = [];
    const first = await fleet.start(admin, request("parallel", "continue"), (m) => logs.push(m));
    assert.equal(first.type, "operation");
    assert.equal(first.total, 3);
    // Started and recorded before any host answered; nobody pulls its events.
    let [listed] = await fleet.list(admin);
    assert.equal(listed.op_id, first.op_id);
    assert.equal(listed.status, "running");
    open("n-1");
    open("n-2");
    await fleet.idle();
    [listed] = await fleet.list(admin);
    assert.equal(listed.status, "done");
    assert.deepEqual(listed.counts, { ok: 2, failed: 0, timed_out: 0, offline: 1, skipped: 0 });
    const shown = await fleet.show(admin, first.op_id);
    assert.equal(
      shown.results.find((r) => r.node_id === "n-3")?.detail,
      "host n-3 is not connected",
    );
    assert.deepEqual(logs, []);

    // Newest first, paged, and only the operator's tenants.
    const second = await fleet.start(
      admin,
      { ...request("parallel", "continue"), target: "n-3" },
      () => {},
    );
    await fleet.idle();
    assert.deepEqual((await fleet.list(admin)).map((o) => o.op_id), [second.op_id, first.op_id]);
    assert.deepEqual((await fleet.list(admin, { limit: 1, offset: 1 })).map((o) => o.op_id), [
      first.op_id,
    ]);
    const other: Operator = { ...admin, sub: "b@test", tenant_id: "t-2" };
    assert.deepEqual(await fleet.list(other), []);
    await assert.rejects(
      () => fleet.show(other, first.op_id),
      (e) => e instanceof AegisError && e.code === "NOT_FOUND",
    );

    // Refusals before the operation exists reject start() itself.
    await assert.rejects(
      () =>
        fleet.start(
          { ...admin, aegis_role: "readonly" },
          request("parallel", "continue"),
          () => {},
        ),
      (e) => e instanceof AegisError && e.code === "FORBIDDEN",
    );
    await assert.rejects(
      () =>
        fleet.start(
          admin,
          { ...request("parallel", "continue"), target: "tags=AnyOf(x)" },
          () => {},
        ),
      (e) => e instanceof AegisError && e.code === "NOT_FOUND",
    );
  } finally {
    await test.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher start(): a failure part-way is logged and the operation marked interrupted`, async () => {
  const test = await testDatabase();
  const store = await test.open();
  try {
    await insertHost(store, "n-1", "h-1");
    // The results table refuses writes, as a database that went away mid-operation would.
    const db: Queryable = {
      query: (sql, params) =>
        sql.includes("INSERT INTO fleet_results")
          ? Promise.reject(new Error("connection lost"))
          : store.query(sql, params),
    };
    const { calls, open } = gatedHosts(new Set());
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => new Date());
    const logs: string[] = [];
    const first = await fleet.start(admin, request("parallel", "continue"), (m) => logs.push(m));
    open("n-1");
    await fleet.idle();
    assert.equal((await fleet.show(admin, first.op_id)).status, "interrupted");
    assert.equal(logs.length, 1);
    assert.match(logs[0], /connection lost/);
  } finally {
    await test.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher: a tenant runs at most ${FLEET_RUNNING_PER_TENANT} operations at once`, async () => {
  const test = await testDatabase();
  const db = await test.open();
  try {
    await insertHost(db, "n-1", "h-1");
    const now = new Date("2026-01-01T00:00:00Z");
    const insertRunning = (opId: string, tenant: string, startedAt: Date) =>
      db.query(
        `INSERT INTO fleet_operations (op_id, tenant_id, operation, target, mode, on_error,
           deadline_secs, requested_by, relay_id, status, total, started_at)
         VALUES ($1, $2, 'exec', 'all', 'parallel', 'continue', 10, 'x', 'r', 'running', 1, $3)`,
        [opId, tenant, startedAt],
      );
    for (let i = 0; i < FLEET_RUNNING_PER_TENANT - 1; i++) {
      await insertRunning(`op-a${i}`, "t-1", now);
    }
    // Another tenant's, and one a dead relay left running two days ago, do not count.
    await insertRunning("op-other", "t-2", now);
    await insertRunning("op-old", "t-1", new Date(now.getTime() - 2 * 86_400_000));
    const { calls } = gatedHosts(new Set(["n-1"]));
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => now);
    // The last free slot is taken; the next start is refused with a reason.
    await fleet.start(admin, request("parallel", "continue"), () => {});
    await fleet.idle();
    await insertRunning("op-a-last", "t-1", now);
    await assert.rejects(
      fleet.start(admin, request("parallel", "continue"), () => {}),
      (e: AegisError) =>
        e.code === "RATE_LIMITED" && /already has 20 fleet operations running/.test(e.message),
    );
  } finally {
    await test.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] FleetDispatcher stop(): no more hosts start, the rest are skipped "stopped by" whom`, async () => {
  const test = await testDatabase();
  const db = await test.open();
  try {
    for (const n of [1, 2, 3]) await insertHost(db, `n-${n}`, `h-${n}`);
    const { calls, open, started } = gatedHosts(new Set());
    const fleet = new FleetDispatcher(db, calls, "relay-test", () => new Date());
    const op = await fleet.start(admin, request("sequential", "continue"), () => {});
    while (started.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));

    const reader: Operator = { ...admin, sub: "ro@test", aegis_role: "readonly" };
    await assert.rejects(fleet.stop(reader, op.op_id), (e: AegisError) => e.code === "FORBIDDEN");
    const stranger: Operator = { ...admin, tenant_id: "t-2" };
    await assert.rejects(fleet.stop(stranger, op.op_id), (e: AegisError) => e.code === "NOT_FOUND");
    await fleet.stop(admin, op.op_id);
    // The host already running finishes; nothing starts after it.
    open("n-1");
    await fleet.idle();
    assert.deepEqual(started, ["n-1"]);
    const shown = await fleet.show(admin, op.op_id);
    assert.equal(shown.status, "stopped");
    assert.equal(shown.stop_requested_by, "admin@test");
    assert.deepEqual(
      shown.results.map((r) => `${r.node_id} ${r.status} ${r.detail ?? ""}`.trim()).sort(),
      ["n-1 ok ok", "n-2 skipped stopped by admin@test", "n-3 skipped stopped by admin@test"],
    );
    await assert.rejects(fleet.stop(admin, op.op_id), (e: AegisError) => e.code === "CONFLICT");
  } finally {
    await test.cleanup();
  }
});
