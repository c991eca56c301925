// One caller's text must not poison a group commit shared with other callers. The audit log and
// the execution table write every row queued in one event-loop turn in one transaction; a row
// PostgreSQL refuses (a NUL in a text column, a lone UTF-16 surrogate inside jsonb) would fail the
// whole batch and lose other users' and other tenants' records with it. Free text is made
// storable where it enters (shared/printable.ts storableText), and a batch the database refuses
// for a row's data is written row by row (batch_writer.ts), so only that row could fail.
import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { AuditLog } from "../../controller/app/audit.ts";
import type { Actor } from "../../controller/app/identity.ts";
import { operatorPrincipal } from "../../controller/app/identity.ts";
import { ExecutionService } from "../../controller/app/executions.ts";
import { SecurityContexts } from "../../controller/app/security_contexts.ts";
import { SecuritySchema } from "../../controller/security_config.ts";

const T0 = new Date("2026-03-01T12:00:00.000Z");
const clock = () => T0;

const bob: Actor = {
  kind: "consumer",
  issuer: "https://users.test",
  subject: "bob",
  context: "zaru-free",
};

/** What EdgeActions records for an MCP aegis.edge.tool.call a Free user sends (its title). */
function toolCallTarget(tool: string, nodeId: string): string {
  return `${tool} on ${nodeId}`.slice(0, 200);
}

Deno.test(`a NUL in one tenant's audit target costs no other tenant its record (${TEST_DB_KIND})`, async () => {
  const database = await testDatabase();
  try {
    const db = await database.open();
    const lines: string[] = [];
    const audit = new AuditLog(db, "relay-a", clock, (line) => lines.push(line));
    // Same turn: one flush. The attacker's MCP tool argument "echo\0" reaches the target as-is.
    const innocent = audit.record({
      tenantId: "tenant-a",
      actor: { ...bob, subject: "alice" },
      action: "node.revoke",
      target: "n-1",
      outcome: "ok",
      retentionDays: 90,
    });
    const attacker = audit.record({
      tenantId: "u-attacker",
      actor: bob,
      action: "aegis.edge.tool.call",
      target: toolCallTarget("echo\u0000", "n-2"),
      outcome: "refused",
      retentionDays: 365,
    });
    await Promise.all([innocent, attacker]);
    const anchor = await audit.anchor("tenant-a");
    assert.equal(
      anchor.head_seq,
      1,
      `tenant-a's record was lost with the poisoned batch: ${lines.join(" | ")}`,
    );
  } finally {
    await database.cleanup();
  }
});

Deno.test(`a target cut inside a surrogate pair is recorded, repaired (${TEST_DB_KIND})`, async () => {
  const database = await testDatabase();
  try {
    const db = await database.open();
    const lines: string[] = [];
    const audit = new AuditLog(db, "relay-a", clock, (line) => lines.push(line));
    // EdgeActions cuts a title at 200 UTF-16 units: an emoji across the cut leaves half of it.
    const target = toolCallTarget("a".repeat(128), "n".repeat(67) + "\u{1F600}");
    assert.equal(target.length, 200);
    await audit.record({
      tenantId: "u-attacker",
      actor: bob,
      action: "aegis.edge.tool.call",
      target,
      outcome: "refused",
      retentionDays: 365,
    });
    const anchor = await audit.anchor("u-attacker");
    assert.equal(anchor.head_seq, 1, `the refusal was not recorded: ${lines.join(" | ")}`);
  } finally {
    await database.cleanup();
  }
});

Deno.test(`a NUL in one operator's execution title fails nobody's open (${TEST_DB_KIND})`, async () => {
  const database = await testDatabase();
  try {
    const db = await database.open();
    const executions = new ExecutionService(
      db,
      new SecurityContexts(SecuritySchema.parse({})),
      "relay-a",
      clock,
    );
    const operator = (sub: string, tenant: string) =>
      operatorPrincipal({
        iss: "https://ops.test",
        sub,
        exp: 0,
        tenant_id: tenant,
        aegis_role: "operator",
        tenants: [],
      });
    // The operator context has no limits, so both opens take the group-commit path together.
    const innocent = executions.open(operator("alice", "t1"), {
      kind: "command",
      title: "echo on n-1",
      tool: "aegis.edge.tool.call",
    });
    const attacker = executions.open(operator("mallory", "t2"), {
      kind: "command",
      title: "echo\u0000 on n-2",
      tool: "aegis.edge.tool.call",
    });
    const [a, m] = await Promise.allSettled([innocent, attacker]);
    assert.equal(m.status, "fulfilled", "the NUL is replaced, not refused by the database");
    if (m.status === "fulfilled") {
      assert.equal(m.value.record.title, "echo\uFFFD on n-2");
      await m.value.end("succeeded");
    }
    assert.equal(
      a.status,
      "fulfilled",
      `alice's execution failed with mallory's: ${a.status === "rejected" ? a.reason : ""}`,
    );
    if (a.status === "fulfilled") await a.value.end("succeeded");
    await executions.drain();
  } finally {
    await database.cleanup();
  }
});

Deno.test(`a host's refusal code with a NUL is stored, and other executions' writes are kept (${TEST_DB_KIND})`, async () => {
  const database = await testDatabase();
  try {
    const db = await database.open();
    const executions = new ExecutionService(
      db,
      new SecurityContexts(SecuritySchema.parse({})),
      "relay-a",
      clock,
    );
    const alice = operatorPrincipal({
      iss: "https://ops.test",
      sub: "alice",
      exp: 0,
      tenant_id: "t1",
      aegis_role: "operator",
      tenants: [],
    });
    const first = await executions.open(alice, {
      kind: "command",
      title: "echo on n-1",
      tool: "aegis.edge.tool.call",
    });
    // EdgeActions.runTool ends a call refused by the host with `refused: ${event.code}`, the code
    // as the (malicious) host sent it; the end is written with the next group commit.
    const poisoned = first.end("failed", "refused: E\u0000");
    const innocent = executions.open(alice, {
      kind: "command",
      title: "echo on n-2",
      tool: "aegis.edge.tool.call",
    });
    const [p, a] = await Promise.allSettled([poisoned, innocent]);
    assert.equal(p.status, "fulfilled", "the host's NUL is replaced, not refused by the database");
    assert.equal(
      a.status,
      "fulfilled",
      `an unrelated open failed with the host's row: ${a.status === "rejected" ? a.reason : ""}`,
    );
    const [row] = await db.query<{ status: string; detail: string }>(
      `SELECT status, detail FROM executions WHERE id = $1`,
      [first.record.id],
    );
    assert.equal(row.status, "failed", "the refused call ended, not left running");
    assert.equal(row.detail, "refused: E\uFFFD");
  } finally {
    await database.cleanup();
  }
});
