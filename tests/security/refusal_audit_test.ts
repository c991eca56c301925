// Refusals are audited within bounds. A Free user (7 days of audit retention, one execution at a
// time) whose quota is used up can keep calling: its refusals must neither grow the audit log at
// request rate nor be kept longer than anything its tier keeps. Repeats of one refusal within a
// minute are one record with a count; a refusal is kept as long as the caller's context says.
import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { AuditLog } from "../../controller/app/audit.ts";
import { EdgeActions, type EdgeActionsDeps } from "../../controller/app/edge_actions.ts";
import { ExecutionService } from "../../controller/app/executions.ts";
import type { Principal } from "../../controller/app/identity.ts";
import { SecurityContexts } from "../../controller/app/security_contexts.ts";
import { SecuritySchema } from "../../controller/security_config.ts";
import { AegisError } from "../../shared/errors.ts";

const T0 = new Date("2026-03-01T12:00:00.000Z");
const DAY = 86_400_000;

const free: Principal = {
  iss: "https://users.test",
  sub: "bob",
  exp: 0,
  tenant_id: "u-bob",
  tenants: [],
  aegis_role: "operator",
  kind: "consumer",
  context: "zaru-free",
  tier: "Free",
  roles: [],
};

Deno.test(`refused calls are audited once a minute with a count, kept as long as the caller's tier keeps records (${TEST_DB_KIND})`, async () => {
  const database = await testDatabase();
  try {
    const db = await database.open();
    const clock = () => T0;
    const executions = new ExecutionService(
      db,
      new SecurityContexts(SecuritySchema.parse({})),
      "relay-a",
      clock,
    );
    const audit = new AuditLog(db, "relay-a", clock, () => {});
    // Only the refusal path runs: the execution is refused before any host is called, so the
    // services behind a call are never reached.
    const actions = new EdgeActions({
      executions,
      audit,
      contexts: new SecurityContexts(SecuritySchema.parse({})),
      log: () => {},
    } as unknown as EdgeActionsDeps);
    // Free: one execution at a time. The first holds the slot.
    const held = await executions.open(free, {
      kind: "command",
      title: "echo on n-1",
      tool: "aegis.edge.tool.call",
    });
    const refusals = 50;
    for (let i = 0; i < refusals; i++) {
      const events = actions.runTool(
        free,
        "n-1",
        { tool: "echo", arguments: {}, timeoutSecs: 60 },
        {
          tool: "aegis.edge.tool.call",
        },
      );
      await assert.rejects(
        events.next(),
        (e: unknown) => e instanceof AegisError && e.code === "QUOTA_EXCEEDED",
      );
    }
    actions.flushRefusals();
    await audit.drain();
    const { anchor, records } = await audit.export("u-bob");
    let longest = 0;
    const times: number[] = [];
    for await (const record of records) {
      longest = Math.max(longest, Date.parse(record.retain_until) - Date.parse(record.recorded_at));
      times.push((JSON.parse(record.detail ?? "{}") as { times?: number }).times ?? 1);
    }
    assert.equal(anchor.head_seq, 2, "the first refusal, then one record for the repeats");
    assert.deepEqual(times, [1, refusals - 1], "no refusal goes uncounted");
    assert.ok(
      longest <= 7 * DAY,
      `a zaru-free refusal is kept ${longest / DAY} days (the context keeps 7)`,
    );
    await held.end("succeeded");
    await executions.drain();
  } finally {
    await database.cleanup();
  }
});
