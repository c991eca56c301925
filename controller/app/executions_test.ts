// The execution tree against a real database (PGlite, or PostgreSQL with AEGIS_TEST_PG_DSN):
// sessions and their one task, parents, the ceiling rule, limits (with a settable clock, never a
// sleep), cascade cancellation on this relay and across relays, sweeping and visibility. Two
// ExecutionService instances stand for two relays; on PostgreSQL each has its own pool, as two
// controller processes would.
import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import type { Db } from "../store/db.ts";
import { SecuritySchema } from "../security_config.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import {
  type ExecutionHandle,
  ExecutionService,
  MAX_RUNNING_TASKS,
  MAX_TREE_NODES,
} from "./executions.ts";
import { operatorPrincipal, type Principal } from "./identity.ts";
import { RelayBus } from "./relay_bus.ts";
import { SecurityContexts } from "./security_contexts.ts";

const T0 = Date.parse("2026-03-01T12:00:00Z");

function operator(
  sub: string,
  tenant = "t1",
  extra: { tenants?: string[]; role?: "admin" | "operator" | "readonly" } = {},
): Principal {
  return operatorPrincipal({
    iss: "https://ops.test",
    sub,
    exp: 0,
    tenant_id: tenant,
    aegis_role: extra.role ?? "operator",
    tenants: extra.tenants ?? [],
  });
}

/** A consumer as tokens.ts builds one: its own per-user tenant, its tier's context. */
function consumer(sub: string, tier: string, context: string): Principal {
  return {
    iss: "https://users.test",
    sub,
    exp: 0,
    tenant_id: `user-${sub}`,
    tenants: [],
    aegis_role: "operator",
    kind: "consumer",
    context,
    tier,
    roles: [],
  };
}

async function refused(work: Promise<unknown>, code: string): Promise<AegisError> {
  const error = await work.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof AegisError, `expected ${code}, got ${error}`);
  assert.equal(error.code, code, error.message);
  return error;
}

/** A database, a settable clock, and relays on it (each its own pool on PostgreSQL). */
async function setup(security: unknown = {}) {
  const database = await testDatabase();
  const db = await database.open();
  let now = T0;
  const clock = () => new Date(now);
  const contexts = new SecurityContexts(SecuritySchema.parse(security));
  const services: ExecutionService[] = [];
  const relay = async (relayId: string, own = false) => {
    const service = new ExecutionService(
      own && database.kind === "postgres" ? await database.open() : db,
      contexts,
      relayId,
      clock,
    );
    services.push(service);
    return service;
  };
  return {
    db,
    database,
    clock,
    contexts,
    relay,
    advance: (secs: number) => now += secs * 1000,
    set: (ms: number) => now = ms,
    async status(id: string): Promise<string> {
      const [row] = await db.query<{ status: string }>(
        `SELECT status FROM executions WHERE id = $1`,
        [id],
      );
      return row.status;
    },
    async cleanup() {
      await Promise.all(services.map((s) => s.drain().catch(() => {})));
      await database.cleanup();
    },
  };
}

type Setup = Awaited<ReturnType<typeof setup>>;

function dbTest(name: string, fn: (t: Setup) => Promise<void>, security: unknown = {}) {
  Deno.test(`[${TEST_DB_KIND}] executions: ${name}`, async () => {
    const t = await setup(security);
    try {
      await fn(t);
    } finally {
      await t.cleanup();
    }
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

dbTest("a session runs one top-level task; ending it frees the session", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const first = await svc.open(alice, { kind: "task", title: "deploy", sessionId: "s-1" });
  assert.equal(first.record.parent_id, null);
  assert.equal(first.record.root_id, first.record.id);
  await refused(
    svc.open(alice, { kind: "task", title: "again", sessionId: "s-1" }),
    "EXECUTION_ACTIVE",
  );
  // Another session of the same user, and the same session id of another user, are separate.
  await svc.open(alice, { kind: "task", title: "other", sessionId: "s-2" });
  await svc.open(operator("bob"), { kind: "task", title: "bob's", sessionId: "s-1" });

  await svc.finish(alice, first.record.id);
  assert.equal(await t.status(first.record.id), "succeeded");
  const second = await svc.open(alice, { kind: "task", title: "next", sessionId: "s-1" });
  await svc.cancel(alice, second.record.id);
  assert.equal(await t.status(second.record.id), "cancelled");
  await svc.open(alice, { kind: "task", title: "third", sessionId: "s-1" });
  // One conversation, one task, whichever of the caller's tenants it acts on.
  const team = operator("tess", "t1", { tenants: ["t2"] });
  await svc.open(team, { kind: "task", title: "t1 work", sessionId: "s-1" });
  await refused(
    svc.open(team, { kind: "task", title: "t2 work", sessionId: "s-1", tenantId: "t2" }),
    "EXECUTION_ACTIVE",
  );
  await refused(
    svc.open(alice, { kind: "task", title: "x", sessionId: "bad id" }),
    "INVALID_ARGUMENT",
  );
});

dbTest("two relays opening a session's task at once: exactly one wins", async (t) => {
  const a = await t.relay("ra", true);
  const b = await t.relay("rb", true);
  const alice = operator("alice");
  for (let round = 0; round < 8; round++) {
    const sessionId = `race-${round}`;
    const results = await Promise.allSettled([
      a.open(alice, { kind: "task", title: "a", sessionId }),
      b.open(alice, { kind: "task", title: "b", sessionId }),
      a.open(alice, { kind: "task", title: "a2", sessionId }),
      b.open(alice, { kind: "task", title: "b2", sessionId }),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1, `round ${round}`);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof AegisError, String(r.reason));
        assert.equal(r.reason.code, "EXECUTION_ACTIVE");
      }
    }
  }
  const [{ n }] = await t.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM executions WHERE kind = 'task' AND status = 'running'`,
  );
  assert.equal(n, 8);
});

dbTest("work naming a session joins its running task; without one it is a root", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const lone = await svc.open(alice, { kind: "command", title: "lone", sessionId: "s" });
  assert.equal(lone.record.parent_id, null, "no task runs in the session yet");
  const task = await svc.open(alice, { kind: "task", title: "t", sessionId: "s" });
  const joined = await svc.open(alice, { kind: "command", title: "c", sessionId: "s" });
  assert.equal(joined.record.parent_id, task.record.id);
  assert.equal(joined.record.root_id, task.record.id);
  // Work on another of the caller's tenants runs beside the conversation's task, not under it,
  // and still ends with the conversation.
  const team = operator("tess", "t1", { tenants: ["t2"] });
  const teamTask = await svc.open(team, { kind: "task", title: "t", sessionId: "s" });
  const beside = await svc.open(team, {
    kind: "fleet",
    title: "f",
    sessionId: "s",
    tenantId: "t2",
  });
  assert.equal(beside.record.parent_id, null);
  assert.equal(beside.record.tenant_id, "t2");
  assert.deepEqual(
    new Set(await svc.endSession(team, "s")),
    new Set([teamTask.record.id, beside.record.id]),
  );
  // Another user's session of the same id is not this one.
  const bobs = await svc.open(operator("bob"), { kind: "command", title: "c", sessionId: "s" });
  assert.equal(bobs.record.parent_id, null);
  // Cancelling the task reaches the work that joined it.
  await svc.cancel(alice, task.record.id);
  assert.ok(joined.signal.aborted);
  assert.equal(await t.status(joined.record.id), "cancelled");
  assert.equal(await t.status(lone.record.id), "running");
});

dbTest("an explicit parent must be the caller's own and running", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const task = await svc.open(alice, { kind: "task", title: "t" });
  const child = await svc.open(alice, { kind: "command", title: "c", parentId: task.record.id });
  assert.equal(child.record.parent_id, task.record.id);
  assert.equal(child.record.tenant_id, "t1");

  await refused(
    svc.open(operator("bob"), { kind: "command", title: "c", parentId: task.record.id }),
    "FORBIDDEN",
  );
  await refused(
    svc.open(operator("carol", "t2"), { kind: "command", title: "c", parentId: task.record.id }),
    "NOT_FOUND",
  );
  await child.end("succeeded");
  await refused(
    svc.open(alice, { kind: "command", title: "c", parentId: child.record.id }),
    "CONFLICT",
  );
  await refused(
    svc.open(alice, { kind: "command", title: "c", parentId: "not-an-id" }),
    "INVALID_ARGUMENT",
  );
  // A tree stays in one tenant: work naming another tenant than its parent's is refused, not
  // silently recorded under the parent's while it acts on the other.
  const team = operator("tess", "t1", { tenants: ["t2"] });
  const teamTask = await svc.open(team, { kind: "task", title: "t" });
  await refused(
    svc.open(team, { kind: "fleet", title: "f", parentId: teamTask.record.id, tenantId: "t2" }),
    "INVALID_ARGUMENT",
  );
  const same = await svc.open(team, {
    kind: "fleet",
    title: "f",
    parentId: teamTask.record.id,
    tenantId: "t1",
  });
  assert.equal(same.record.tenant_id, "t1");
  assert.equal(
    (await svc.open(team, { kind: "fleet", title: "f", tenantId: "t2" })).record.tenant_id,
    "t2",
  );
  // A tenant the caller has no rights on is refused for a root too.
  await refused(svc.open(alice, { kind: "command", title: "c", tenantId: "t2" }), "FORBIDDEN");
});

dbTest("the ceiling rule: a child never runs under a broader context", async (t) => {
  const svc = await t.relay("r1");
  const ann = consumer("ann", "Pro", "zaru-pro");
  const task = await svc.open(ann, { kind: "task", title: "t" });
  assert.equal(task.record.context, "zaru-pro");
  const narrower = await svc.open(ann, {
    kind: "task",
    title: "free",
    parentId: task.record.id,
    context: "zaru-free",
  });
  assert.equal(narrower.record.context, "zaru-free");
  const error = await refused(
    svc.open(ann, {
      kind: "command",
      title: "c",
      parentId: narrower.record.id,
      context: "zaru-pro",
    }),
    "CONTEXT_CEILING",
  );
  assert.match(error.message, /zaru-pro.*broader than.*zaru-free/);
  // A root is bounded by the caller's own context.
  await refused(
    svc.open(ann, { kind: "task", title: "t", context: "zaru-business" }),
    "CONTEXT_CEILING",
  );
  await refused(
    svc.open(ann, { kind: "task", title: "t", context: "aegis-system-operator" }),
    "CONTEXT_CEILING",
  );
  await refused(
    svc.open(ann, { kind: "task", title: "t", context: "no-such" }),
    "INVALID_ARGUMENT",
  );
  // A name every plain object inherits is not a context either.
  await refused(
    svc.open(ann, { kind: "task", title: "t", context: "constructor" }),
    "INVALID_ARGUMENT",
  );
  // An operator may narrow to a consumer context.
  const op = await svc.open(operator("alice"), { kind: "task", title: "t", context: "zaru-free" });
  assert.equal(op.record.context, "zaru-free");
});

dbTest("tools outside the context and timeouts above its maximum are refused", async (t) => {
  const svc = await t.relay("r1");
  const fay = consumer("fay", "Free", "zaru-free");
  await refused(
    svc.open(fay, { kind: "action", title: "x", tool: "aegis.edge.enrollment_token.issue" }),
    "FORBIDDEN",
  );
  await refused(
    svc.open(fay, { kind: "fleet", title: "x", tool: "aegis.edge.fleet.exec" }),
    "FORBIDDEN",
  );
  await refused(
    svc.open(fay, {
      kind: "command",
      title: "x",
      tool: "aegis.edge.command.run",
      timeoutSecs: 301,
    }),
    "INVALID_ARGUMENT",
  );
  const ok = await svc.open(fay, {
    kind: "command",
    title: "x",
    tool: "aegis.edge.command.run",
    timeoutSecs: 300,
  });
  assert.equal(ok.record.deadline_at?.getTime(), T0 + 300_000);
  // A timeout is a whole number of seconds: none would leave a deadline already passed (or, for
  // NaN, no date at all, and a group commit failing for every row in it).
  for (const timeoutSecs of [0, -5, 1.5, NaN, Infinity]) {
    await refused(svc.open(fay, { kind: "task", title: "x", timeoutSecs }), "INVALID_ARGUMENT");
    await refused(
      svc.openChild(ok, { kind: "node_call", title: "h", timeoutSecs }),
      "INVALID_ARGUMENT",
    );
  }
  // A readonly operator holds no writing tool.
  await refused(
    svc.open(operator("ro", "t1", { role: "readonly" }), {
      kind: "command",
      title: "x",
      tool: "aegis.edge.command.run",
    }),
    "FORBIDDEN",
  );
});

dbTest("a child's deadline never passes its parent's", async (t) => {
  const svc = await t.relay("r1");
  const ann = consumer("ann", "Pro", "zaru-pro");
  const task = await svc.open(ann, { kind: "task", title: "t" });
  assert.equal(task.record.deadline_at?.getTime(), T0 + 1800_000);
  t.advance(1000);
  const child = await svc.open(ann, {
    kind: "command",
    title: "c",
    parentId: task.record.id,
    timeoutSecs: 1800,
  });
  assert.equal(child.record.deadline_at?.getTime(), T0 + 1800_000);
  const host = await svc.openChild(child, { kind: "node_call", title: "h", timeoutSecs: 1800 });
  assert.equal(host.record.deadline_at?.getTime(), T0 + 1800_000);
  const short = await svc.openChild(child, { kind: "node_call", title: "h", timeoutSecs: 10 });
  assert.equal(short.record.deadline_at?.getTime(), T0 + 1010_000);
});

dbTest("executions per minute: retry exactly when the oldest leaves the window", async (t) => {
  const svc = await t.relay("r1");
  const fay = consumer("fay", "Free", "zaru-free");
  const run = { kind: "command", title: "c", tool: "aegis.edge.command.run" } as const;
  for (const at of [0, 10, 20]) {
    t.set(T0 + at * 1000);
    const handle = await svc.open(fay, run);
    // node_call children and non-counted tools do not use the rate (the context runs one
    // execution at a time, so the listing waits for the command to end).
    await svc.openChild(handle, { kind: "node_call", title: "h" }).then((h) => h.end("succeeded"));
    await handle.end("succeeded");
    await svc.open(fay, { kind: "command", title: "l", tool: "aegis.edge.hosts.list" })
      .then((h) => h.end("succeeded"));
  }
  t.set(T0 + 30_000);
  const error = await refused(svc.open(fay, run), "QUOTA_EXCEEDED");
  assert.equal(error.details.retry_after_secs, "30");
  assert.equal(error.details.context, "zaru-free");
  assert.match(error.message, /3 execution\(s\) per minute/);
  t.set(T0 + 59_500);
  assert.equal((await refused(svc.open(fay, run), "QUOTA_EXCEEDED")).details.retry_after_secs, "1");
  t.set(T0 + 60_000);
  await (await svc.open(fay, run)).end("succeeded");
  // Reading tools are not counted, so they still run at the limit.
  await svc.open(fay, { kind: "command", title: "l", tool: "aegis.edge.hosts.list" });
});

dbTest(
  "executions per day: retry when the day's oldest leaves the window",
  async (t) => {
    const svc = await t.relay("r1");
    const fay = consumer("fay", "Free", "zaru-free");
    const run = { kind: "command", title: "c", tool: "aegis.edge.command.run" } as const;
    for (let i = 0; i < 20; i++) {
      t.set(T0 + i * 60_000);
      await (await svc.open(fay, run)).end("succeeded");
    }
    t.set(T0 + 3_600_000);
    const error = await refused(svc.open(fay, run), "QUOTA_EXCEEDED");
    assert.match(error.message, /20 execution\(s\) per day/);
    assert.equal(error.details.retry_after_secs, String(86_400 - 3_600));
    t.set(T0 + 86_400_000);
    await svc.open(fay, run);
  },
);

dbTest("concurrency: the retry hint names when the first running one ends", async (t) => {
  const svc = await t.relay("r1");
  const ann = consumer("ann", "Pro", "zaru-pro");
  // Tasks and node calls do not count against concurrency.
  const task = await svc.open(ann, { kind: "task", title: "t" });
  const handles: ExecutionHandle[] = [];
  for (const timeoutSecs of [600, 45, 900, 1200, 1500]) {
    const handle = await svc.open(ann, {
      kind: "command",
      title: "c",
      tool: "aegis.edge.command.run",
      parentId: task.record.id,
      timeoutSecs,
    });
    handles.push(handle);
    await svc.openChild(handle, { kind: "node_call", title: "h" });
  }
  t.advance(5);
  const run = { kind: "command", title: "c", tool: "aegis.edge.command.run" } as const;
  const error = await refused(svc.open(ann, run), "QUOTA_EXCEEDED");
  assert.equal(error.details.retry_after_secs, "40");
  assert.match(error.message, /at most 5 execution\(s\) at once/);
  // A hint never asks for more than a minute, however long the first one may still run.
  await handles[1].end("succeeded");
  await svc.open(ann, run);
  assert.equal(
    (await refused(svc.open(ann, run), "QUOTA_EXCEEDED")).details.retry_after_secs,
    "60",
  );
});

dbTest(
  "one identity holds at most MAX_RUNNING_TASKS running tasks, unlimited context or not",
  async (t) => {
    const svc = await t.relay("r1");
    const alice = operator("alice");
    const tasks: ExecutionHandle[] = [];
    for (let i = 0; i < MAX_RUNNING_TASKS; i++) {
      tasks.push(await svc.open(alice, { kind: "task", title: `t${i}` }));
    }
    const error = await refused(
      svc.open(alice, { kind: "task", title: "one more" }),
      "QUOTA_EXCEEDED",
    );
    assert.match(error.message, new RegExp(`at most ${MAX_RUNNING_TASKS}`));
    // Tool calls are not tasks; another user has tasks of its own.
    await svc.open(alice, { kind: "command", title: "c" });
    await svc.open(operator("bob"), { kind: "task", title: "bob's" });
    await svc.finish(alice, tasks[0].record.id);
    await svc.open(alice, { kind: "task", title: "one more" });
  },
);

dbTest(
  "limits hold across two relays: 12 concurrent opens for a limit of 3",
  async (t) => {
    const a = await t.relay("ra", true);
    const b = await t.relay("rb", true);
    const attempt = async (who: Principal) => {
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? a : b).open(who, {
            kind: "command",
            title: `c${i}`,
            tool: "aegis.edge.command.run",
          })),
      );
      for (const r of results) {
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof AegisError, String(r.reason));
          assert.equal(r.reason.code, "QUOTA_EXCEEDED");
        }
      }
      return results.filter((r) => r.status === "fulfilled").length;
    };
    // "conc" may run 3 at once; "rate" may start 3 a minute.
    assert.equal(await attempt(operator("conc")), 3);
    assert.equal(await attempt(operator("rate")), 3);
  },
  { users: { conc: { max_concurrent: 3 }, rate: { executions_per_minute: 3 } } },
);

dbTest(
  "per-tenant and per-user overrides apply, the user's winning",
  async (t) => {
    const svc = await t.relay("r1");
    const run = { kind: "command", title: "c", tool: "aegis.edge.command.run" } as const;
    // Tenant user-ann allows 1 a minute; ann herself 2 (hers wins); ben has only the tenant's.
    const ann = consumer("ann", "Pro", "zaru-pro");
    await svc.open(ann, run);
    await svc.open(ann, run);
    assert.match((await refused(svc.open(ann, run), "QUOTA_EXCEEDED")).message, /allows 2/);
    const ben = { ...consumer("ben", "Pro", "zaru-pro"), tenant_id: "user-ann" };
    await svc.open(ben, run);
    assert.match((await refused(svc.open(ben, run), "QUOTA_EXCEEDED")).message, /allows 1/);
    // The tenant's timeout override narrows what a task may ask for.
    await refused(svc.open(ben, { ...run, kind: "task", timeoutSecs: 121 }), "INVALID_ARGUMENT");
  },
  {
    tenants: { "user-ann": { executions_per_minute: 1, max_timeout_secs: 120 } },
    users: { ann: { executions_per_minute: 2 } },
  },
);

dbTest("cancelling a root cancels every running descendant and aborts their work", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const task = await svc.open(alice, { kind: "task", title: "t", sessionId: "s" });
  const fleet = await svc.open(alice, { kind: "fleet", title: "f", parentId: task.record.id });
  const hosts = await Promise.all(
    ["n1", "n2", "n3"].map((n) => svc.openChild(fleet, { kind: "node_call", title: n, ref: n })),
  );
  await hosts[0].end("succeeded");
  const cancelled = await svc.cancel(alice, task.record.id, "changed my mind");
  assert.deepEqual(
    new Set(cancelled),
    new Set([task.record.id, fleet.record.id, hosts[1].record.id, hosts[2].record.id]),
  );
  for (const h of [task, fleet, hosts[1], hosts[2]]) {
    assert.equal(await t.status(h.record.id), "cancelled");
  }
  assert.equal(await t.status(hosts[0].record.id), "succeeded");
  assert.ok(fleet.signal.aborted && hosts[1].signal.aborted && hosts[2].signal.aborted);
  // A cancelled execution's runner ending it does not overwrite "cancelled".
  await hosts[1].end("succeeded", "exit 0");
  await fleet.end("failed", "boom");
  await svc.drain();
  assert.equal(await t.status(hosts[1].record.id), "cancelled");
  const shown = await svc.show(alice, fleet.record.id);
  assert.equal(shown.status, "cancelled");
  assert.equal(shown.cancel_requested_by, "alice");
  assert.match(shown.detail ?? "", /changed my mind/);
  // Cancelling again cancels nothing; the session is free again.
  assert.deepEqual(await svc.cancel(alice, task.record.id), []);
  await svc.open(alice, { kind: "task", title: "t", sessionId: "s" });
  // Live: hosts[2] (its runner has not ended it) and the new task; the rest ended or were tasks.
  assert.equal(svc.liveCount, 2);
});

dbTest("cancelling and finishing are writes: a readonly operator may do neither", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const task = await svc.open(alice, { kind: "task", title: "t" });
  const cmd = await svc.open(alice, { kind: "command", title: "c", parentId: task.record.id });
  const viewer = operator("viewer", "t1", { role: "readonly" });
  assert.equal((await svc.show(viewer, cmd.record.id)).status, "running", "it may look");
  await refused(svc.cancel(viewer, cmd.record.id), "FORBIDDEN");
  await refused(svc.finish(viewer, task.record.id), "FORBIDDEN");
  assert.equal(await t.status(cmd.record.id), "running");
  assert.ok(!cmd.signal.aborted);
  // Another writer of the tenant may; a consumer may end its own work.
  assert.deepEqual(await svc.cancel(operator("bob"), cmd.record.id), [cmd.record.id]);
  const ann = consumer("ann", "Free", "zaru-free");
  const own = await svc.open(ann, { kind: "task", title: "t" });
  assert.deepEqual(await svc.finish(ann, own.record.id), []);
  assert.equal(await t.status(own.record.id), "succeeded");
});

dbTest("a child handle's signal aborts when its local parent is aborted", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const fleet = await svc.open(alice, { kind: "fleet", title: "f" });
  const host = await svc.openChild(fleet, { kind: "node_call", title: "h" });
  const joined = await svc.open(alice, { kind: "command", title: "c", parentId: fleet.record.id });
  assert.ok(!host.signal.aborted);
  svc.abortLocal([fleet.record.id]);
  assert.ok(fleet.signal.aborted && host.signal.aborted && joined.signal.aborted);
});

/** Relays wired as controller/server/controller.ts wires them, each with its own bus. */
async function busFor(db: Db, svc: ExecutionService, relayId: string): Promise<RelayBus> {
  // A cancel message never reaches the hub; what it does on reconnect is not under test here.
  const hub = { revalidate: () => Promise.resolve(0) } as unknown as EdgeHub;
  const bus = new RelayBus(db, hub, relayId, () => {});
  await bus.start();
  svc.notifier = bus;
  bus.onCancel = (ids) => svc.abortLocal(ids);
  return bus;
}

Deno.test(`[${TEST_DB_KIND}] executions: a cancel on one relay reaches work on another`, async () => {
  const t = await setup();
  const buses: RelayBus[] = [];
  try {
    const dbA = t.database.kind === "postgres" ? await t.database.open() : t.db;
    const dbB = t.database.kind === "postgres" ? await t.database.open() : t.db;
    const a = new ExecutionService(dbA, t.contexts, "ra", t.clock);
    const b = new ExecutionService(dbB, t.contexts, "rb", t.clock);
    buses.push(await busFor(dbA, a, "ra"), await busFor(dbB, b, "rb"));
    const alice = operator("alice");
    const task = await a.open(alice, { kind: "task", title: "t" });
    const remote = await b.open(alice, { kind: "command", title: "c", parentId: task.record.id });
    const host = await b.openChild(remote, { kind: "node_call", title: "h" });
    assert.ok(!remote.signal.aborted);
    const cancelled = await a.cancel(alice, task.record.id);
    assert.equal(cancelled.length, 3);
    // The NOTIFY arrives when it arrives: wait for the abort itself, not for a time.
    await Promise.all([aborted(remote.signal), aborted(host.signal)]);
    assert.equal(await t.status(host.record.id), "cancelled");
    await Promise.all([a.drain(), b.drain()]);
  } finally {
    await Promise.all(buses.map((bus) => bus.stop()));
    await t.cleanup();
  }
});

dbTest("without the bus, sweep and reconcile still abort work cancelled elsewhere", async (t) => {
  const a = await t.relay("ra", true);
  const b = await t.relay("rb", true);
  const alice = operator("alice");
  const first = await b.open(alice, { kind: "command", title: "c1" });
  const second = await b.open(alice, { kind: "command", title: "c2" });
  await a.cancel(alice, first.record.id);
  await a.cancel(alice, second.record.id);
  assert.ok(!first.signal.aborted, "no bus: relay b has not heard yet");
  await b.reconcile();
  assert.ok(first.signal.aborted && second.signal.aborted);

  const third = await b.open(alice, { kind: "command", title: "c3" });
  await a.cancel(alice, third.record.id);
  assert.equal(await b.sweep(), 0, "nothing was past its deadline");
  assert.ok(third.signal.aborted, "sweep reconciles too");
});

dbTest("sweep cancels trees past their deadline", async (t) => {
  const svc = await t.relay("r1");
  const fay = consumer("fay", "Free", "zaru-free");
  const short = await svc.open(fay, {
    kind: "command",
    title: "c",
    tool: "aegis.edge.command.run",
    timeoutSecs: 60,
  });
  const host = await svc.openChild(short, { kind: "node_call", title: "h" });
  const task = await svc.open(fay, { kind: "task", title: "t" });
  t.advance(60);
  assert.equal(await svc.sweep(), 0, "a deadline is not passed at the instant it falls");
  t.advance(1);
  assert.equal(await svc.sweep(), 2);
  assert.ok(short.signal.aborted && host.signal.aborted);
  const shown = await svc.show(fay, short.record.id);
  assert.equal(shown.status, "cancelled");
  assert.equal(shown.detail, "its deadline passed");
  assert.equal(await t.status(task.record.id), "running");
  t.advance(300);
  assert.equal(await svc.sweep(), 1, "an abandoned task ends at its context's maximum");
  assert.equal(await t.status(task.record.id), "cancelled");
});

dbTest("ending a session cancels its running roots and their work, nobody else's", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const task = await svc.open(alice, { kind: "task", title: "t", sessionId: "s" });
  const child = await svc.open(alice, { kind: "command", title: "c", sessionId: "s" });
  const other = await svc.open(alice, { kind: "task", title: "t", sessionId: "s2" });
  const bobs = await svc.open(operator("bob"), { kind: "task", title: "t", sessionId: "s" });
  const cancelled = await svc.endSession(alice, "s");
  assert.deepEqual(new Set(cancelled), new Set([task.record.id, child.record.id]));
  assert.ok(child.signal.aborted);
  assert.equal(await t.status(other.record.id), "running");
  assert.equal(await t.status(bobs.record.id), "running");
  assert.deepEqual(await svc.endSession(alice, "s"), []);
  assert.deepEqual(await svc.endSession(alice, "bad id"), []);
});

dbTest("consumers see their own executions only, operators their tenants'", async (t) => {
  const svc = await t.relay("r1");
  const ann = consumer("ann", "Pro", "zaru-pro");
  const ben = consumer("ben", "Pro", "zaru-pro");
  const annTask = await svc.open(ann, { kind: "task", title: "ann" });
  const benTask = await svc.open(ben, { kind: "task", title: "ben" });
  assert.deepEqual((await svc.list(ann)).map((r) => r.id), [annTask.record.id]);
  await refused(svc.show(ann, benTask.record.id), "NOT_FOUND");
  await refused(svc.tree(ann, benTask.record.id), "NOT_FOUND");
  await refused(svc.cancel(ann, benTask.record.id), "NOT_FOUND");
  await refused(svc.list(ann, { tenantId: "user-ben" }), "FORBIDDEN");

  // An operator administering ann's tenant sees all of it; one who does not, none of it.
  const support = operator("support", "t1", { tenants: ["user-ann"] });
  assert.equal((await svc.show(support, annTask.record.id)).title, "ann");
  assert.equal((await svc.list(support, { tenantId: "user-ann" })).length, 1);
  await refused(svc.show(operator("alice"), annTask.record.id), "NOT_FOUND");

  // A consumer does not see an operator's work in its tenant, even one with the same subject.
  const twin = operator("ann", "user-ann");
  const opTask = await svc.open(twin, { kind: "task", title: "operator's" });
  assert.deepEqual((await svc.list(ann)).map((r) => r.id), [annTask.record.id]);
  await refused(svc.show(ann, opTask.record.id), "NOT_FOUND");
  // Operators in one tenant see each other's work; the list filters by status.
  const alice = operator("alice");
  const a1 = await svc.open(alice, { kind: "task", title: "a1" });
  t.advance(1);
  const b1 = await svc.open(operator("bob"), { kind: "task", title: "b1" });
  await svc.finish(alice, a1.record.id);
  assert.deepEqual((await svc.list(alice)).map((r) => r.id), [b1.record.id, a1.record.id]);
  assert.deepEqual((await svc.list(alice, { status: "running" })).map((r) => r.id), [b1.record.id]);
  // The page size is bounded and whole, whatever a query string held.
  assert.deepEqual((await svc.list(alice, { limit: 1.5 })).map((r) => r.id), [b1.record.id]);
  assert.equal((await svc.list(alice, { limit: NaN })).length, 2);
  assert.equal((await svc.list(alice, { limit: -3 })).length, 1);
  assert.equal((await svc.list(alice, { limit: 1e9 })).length, 2);
});

dbTest("tree() returns the whole tree from its root, children in start order", async (t) => {
  const svc = await t.relay("r1");
  const alice = operator("alice");
  const task = await svc.open(alice, { kind: "task", title: "root" });
  t.advance(1);
  const fleet = await svc.open(alice, { kind: "fleet", title: "fleet", parentId: task.record.id });
  t.advance(1);
  const h1 = await svc.openChild(fleet, { kind: "node_call", title: "h1" });
  t.advance(1);
  const h2 = await svc.openChild(fleet, { kind: "node_call", title: "h2" });
  t.advance(1);
  const cmd = await svc.open(alice, { kind: "command", title: "cmd", parentId: task.record.id });
  const { root, truncated } = await svc.tree(alice, h2.record.id);
  assert.equal(truncated, false);
  assert.equal(root.id, task.record.id);
  assert.deepEqual(root.children.map((c) => c.title), ["fleet", "cmd"]);
  assert.deepEqual(root.children[0].children.map((c) => c.id), [h1.record.id, h2.record.id]);
  assert.deepEqual(root.children[1].children, []);
  assert.equal(root.children[1].id, cmd.record.id);
  await refused(svc.finish(alice, cmd.record.id), "INVALID_ARGUMENT");
});

dbTest("tree() stops at its bound and still starts at the root", async (t) => {
  // Relay b's clock runs behind relay a's: its children start "before" their root.
  const a = await t.relay("ra");
  const alice = operator("alice");
  const task = await a.open(alice, { kind: "task", title: "root" });
  t.advance(-5);
  const b = await t.relay("rb");
  const fleet = await b.open(alice, { kind: "fleet", title: "f", parentId: task.record.id });
  t.advance(0.001);
  await Promise.all(
    Array.from(
      { length: MAX_TREE_NODES },
      (_, i) => b.openChild(fleet, { kind: "node_call", title: `h${i}` }),
    ),
  );
  const { root, truncated } = await a.tree(alice, task.record.id);
  assert.equal(truncated, true);
  assert.equal(root.id, task.record.id);
  const count = (node: typeof root): number =>
    1 + node.children.reduce((sum, child) => sum + count(child), 0);
  assert.equal(count(root), MAX_TREE_NODES);
});

dbTest("at start-up a relay fails the work it ran before it stopped, not its tasks", async (t) => {
  const before = await t.relay("r1");
  const other = await t.relay("r2");
  const alice = operator("alice");
  const task = await before.open(alice, { kind: "task", title: "t" });
  const cmd = await before.open(alice, { kind: "command", title: "c", parentId: task.record.id });
  const elsewhere = await other.open(alice, { kind: "command", title: "c" });
  await before.drain();
  const restarted = await t.relay("r1");
  await restarted.interruptOrphans();
  const shown = await restarted.show(alice, cmd.record.id);
  assert.equal(shown.status, "failed");
  assert.match(shown.detail ?? "", /interrupted/);
  assert.equal(await t.status(task.record.id), "running");
  assert.equal(await t.status(elsewhere.record.id), "running");
});
