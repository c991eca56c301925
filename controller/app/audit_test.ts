import assert from "node:assert/strict";
import {
  type AuditAnchor,
  type AuditRecord,
  describeProblem,
  GENESIS_HASH,
  verifyChain,
  type VerifyOptions,
} from "../../shared/audit_chain.ts";
import type { Db } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { type AuditEvent, AuditLog, boundedDetail, MAX_DETAIL_BYTES } from "./audit.ts";
import type { Actor } from "./identity.ts";

const T0 = new Date("2026-03-01T12:00:00.000Z");
const DAY = 86_400_000;

const alice: Actor = {
  kind: "operator",
  issuer: "https://id.example/realms/aegis-system",
  subject: "alice",
  context: "aegis-system-operator",
};

function event(n: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    tenantId: "t1",
    actor: alice,
    action: "node.revoke",
    target: `n-${n}`,
    outcome: "ok",
    retentionDays: 90,
    ...over,
  };
}

/** A clock tests move by hand. */
function testClock(start = T0) {
  let now = start;
  return {
    clock: () => now,
    set(at: Date) {
      now = at;
    },
  };
}

async function exported(
  audit: AuditLog,
  tenant = "t1",
  options: { since?: Date; limit?: number } = {},
): Promise<{ anchor: AuditAnchor; records: AuditRecord[] }> {
  const { anchor, records } = await audit.export(tenant, options);
  const all: AuditRecord[] = [];
  for await (const record of records) all.push(record);
  return { anchor, records: all };
}

async function problems(audit: AuditLog, tenant = "t1", options: VerifyOptions = {}) {
  const { anchor, records } = await exported(audit, tenant);
  return verifyChain(records, anchor, options).problems.map(describeProblem);
}

async function withDb(fn: (open: () => Promise<Db>) => Promise<void>): Promise<void> {
  const database = await testDatabase();
  try {
    await fn(() => database.open());
  } finally {
    await database.cleanup();
  }
}

Deno.test(`[${TEST_DB_KIND}] a record keeps who, what, when and outcome, chained`, async () => {
  await withDb(async (open) => {
    const db = await open();
    const { clock } = testClock();
    const audit = new AuditLog(db, "relay-a", clock);
    await audit.record(event(1, {
      action: "enrollment_token.issue",
      target: "tok-1",
      detail: { name: "web-1", ttl_secs: 900 },
      executionId: "ex-1",
    }));
    await audit.record(event(2, { outcome: "refused", retentionDays: 365 }));
    const { anchor, records } = await exported(audit);
    assert.deepEqual(records.map((r) => ({ ...r, prev_hash: undefined, hash: undefined })), [
      {
        tenant_id: "t1",
        seq: 1,
        recorded_at: T0.toISOString(),
        retain_until: new Date(T0.getTime() + 90 * DAY).toISOString(),
        actor_kind: "operator",
        actor_issuer: alice.issuer,
        actor_subject: "alice",
        actor_context: "aegis-system-operator",
        action: "enrollment_token.issue",
        target: "tok-1",
        outcome: "ok",
        detail: '{"name":"web-1","ttl_secs":900}',
        execution_id: "ex-1",
        relay_id: "relay-a",
        prev_hash: undefined,
        hash: undefined,
      },
      {
        tenant_id: "t1",
        seq: 2,
        recorded_at: T0.toISOString(),
        retain_until: new Date(T0.getTime() + 365 * DAY).toISOString(),
        actor_kind: "operator",
        actor_issuer: alice.issuer,
        actor_subject: "alice",
        actor_context: "aegis-system-operator",
        action: "node.revoke",
        target: "n-2",
        outcome: "refused",
        detail: null,
        execution_id: null,
        relay_id: "relay-a",
        prev_hash: undefined,
        hash: undefined,
      },
    ]);
    assert.equal(records[0].prev_hash, GENESIS_HASH);
    assert.equal(records[1].prev_hash, records[0].hash);
    assert.deepEqual(anchor, {
      tenant_id: "t1",
      pruned_through_seq: 0,
      pruned_through_hash: GENESIS_HASH,
      head_seq: 2,
      head_hash: records[1].hash,
    });
    assert.equal(verifyChain(records, anchor).ok, true);
    // Another tenant's chain is its own, from seq 1; an unknown tenant's is empty.
    await audit.record(event(3, { tenantId: "t2" }));
    const other = await exported(audit, "t2");
    assert.deepEqual(other.records.map((r) => [r.seq, r.prev_hash]), [[1, GENESIS_HASH]]);
    assert.deepEqual((await exported(audit, "nobody")).anchor.head_seq, 0);
  });
});

Deno.test(`[${TEST_DB_KIND}] two relays writing one tenant at once keep one chain`, async () => {
  await withDb(async (open) => {
    // On PostgreSQL each relay has its own connection pool, as two controller processes would.
    const [dbA, dbB] = TEST_DB_KIND === "postgres"
      ? await Promise.all([open(), open()])
      : await open().then((db) => [db, db]);
    const { clock } = testClock();
    const relayA = new AuditLog(dbA, "relay-a", clock);
    const relayB = new AuditLog(dbB, "relay-b", clock);
    const writes: Promise<void>[] = [];
    // Several flushes each (writes spread over turns of the event loop), interleaved, over two
    // tenants, one of which neither relay has written before (its head row is raced for).
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 15; i++) {
        const n = round * 15 + i;
        writes.push(relayA.record(event(n, { target: `a-${n}` })));
        writes.push(relayB.record(event(n, { target: `b-${n}` })));
        if (i % 5 === 0) writes.push(relayB.record(event(n, { tenantId: "t2" })));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    await Promise.all([relayA.drain(), relayB.drain()]);
    assert.equal(relayA.failures + relayB.failures, 0);

    const { anchor, records } = await exported(relayA);
    assert.equal(records.length, 600);
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 600 }, (_, i) => i + 1));
    assert.deepEqual(verifyChain(records, anchor).problems, []);
    // The relays' flushes did interleave: both wrote within the first half of the chain.
    assert.equal(new Set(records.slice(0, 300).map((r) => r.relay_id)).size, 2);
    // Both relays' records are in it, each relay's in the order it wrote them.
    for (const relay of ["a", "b"]) {
      const mine = records.filter((r) => r.target.startsWith(`${relay}-`));
      assert.deepEqual(
        mine.map((r) => r.target),
        Array.from({ length: 300 }, (_, n) => `${relay}-${n}`),
      );
    }
    const t2 = await exported(relayB, "t2");
    assert.equal(t2.records.length, 60);
    assert.equal(verifyChain(t2.records, t2.anchor).ok, true);
  });
});

Deno.test(`[${TEST_DB_KIND}] edits and deletions in the database are caught by verify`, async () => {
  await withDb(async (open) => {
    const db = await open();
    const audit = new AuditLog(db, "relay-a", testClock().clock);
    for (let n = 1; n <= 10; n++) await audit.record(event(n));
    assert.deepEqual(await problems(audit), []);

    await db.query(`UPDATE audit_log SET outcome = 'failed' WHERE tenant_id = 't1' AND seq = 7`);
    assert.deepEqual(await problems(audit), [
      "record 7 was edited (its content no longer matches its hash)",
    ]);
    await db.query(`UPDATE audit_log SET outcome = 'ok' WHERE tenant_id = 't1' AND seq = 7`);
    assert.deepEqual(await problems(audit), []);

    await db.query(`DELETE FROM audit_log WHERE tenant_id = 't1' AND seq = 5`);
    assert.deepEqual(await problems(audit), ["record 5 is missing"]);

    await db.query(`DELETE FROM audit_log WHERE tenant_id = 't1' AND seq >= 9`);
    assert.deepEqual(await problems(audit), [
      "record 5 is missing",
      "records 9..10 are missing (they were the newest)",
    ]);

    // Rewriting a record, hash and all, shows in the record after it.
    const [r3] = (await exported(audit)).records.filter((r) => r.seq === 3);
    const { chainRecord } = await import("../../shared/audit_chain.ts");
    const forged = chainRecord(r3.prev_hash, { ...r3, actor_subject: "mallory" });
    await db.query(
      `UPDATE audit_log SET actor_subject = $1, hash = $2 WHERE tenant_id = 't1' AND seq = 3`,
      [forged.actor_subject, forged.hash],
    );
    assert.deepEqual(await problems(audit), [
      "record 3 was rewritten (the record after it was chained to another)",
      "record 5 is missing",
      "records 9..10 are missing (they were the newest)",
    ]);
  });
});

Deno.test(`[${TEST_DB_KIND}] prune deletes an expired prefix only and verify stays ok`, async () => {
  await withDb(async (open) => {
    const db = await open();
    const time = testClock();
    const audit = new AuditLog(db, "relay-a", time.clock);
    // seq 1-3 kept 90 days (Business), 4 kept 365 (Enterprise, after an upgrade), 5-6 kept 90.
    for (let n = 1; n <= 6; n++) {
      await audit.record(event(n, { retentionDays: n === 4 ? 365 : 90 }));
    }
    await audit.record(event(1, { tenantId: "t2", retentionDays: 90 }));

    assert.equal(await audit.prune(new Date(T0.getTime() + 89 * DAY)), 0);
    // Day 90: 1-3 and 5-6 expired, but 4 is retained, so only 1-3 go.
    assert.equal(await audit.prune(new Date(T0.getTime() + 90 * DAY)), 4);
    let { anchor, records } = await exported(audit);
    assert.deepEqual(records.map((r) => r.seq), [4, 5, 6]);
    assert.equal(anchor.pruned_through_seq, 3);
    assert.equal(anchor.pruned_through_hash, records[0].prev_hash);
    assert.deepEqual(verifyChain(records, anchor).problems, []);
    assert.equal((await exported(audit, "t2")).records.length, 0);
    assert.equal(verifyChain([], (await exported(audit, "t2")).anchor).ok, true);

    // New records still chain on after pruning.
    time.set(new Date(T0.getTime() + 100 * DAY));
    await audit.record(event(7, { retentionDays: 90 }));
    ({ anchor, records } = await exported(audit));
    assert.deepEqual(records.map((r) => r.seq), [4, 5, 6, 7]);
    assert.equal(verifyChain(records, anchor).ok, true);

    // Day 189: 4 still holds the rest back. Day 365: all of it has expired; the anchor is then
    // the head, and the empty chain is intact.
    assert.equal(await audit.prune(new Date(T0.getTime() + 189 * DAY)), 0);
    assert.equal(await audit.prune(new Date(T0.getTime() + 365 * DAY)), 4);
    ({ anchor, records } = await exported(audit));
    assert.deepEqual([records.length, anchor.pruned_through_seq, anchor.head_seq], [0, 7, 7]);
    assert.equal(anchor.pruned_through_hash, anchor.head_hash);
    assert.equal(verifyChain(records, anchor).ok, true);

    // A deletion is not papered over by a prune: pruning stops at the gap, which stays visible.
    time.set(new Date(T0.getTime() + 400 * DAY));
    for (let n = 8; n <= 12; n++) await audit.record(event(n, { retentionDays: 1 + (n % 2) * 30 }));
    await db.query(`DELETE FROM audit_log WHERE tenant_id = 't1' AND seq = 9`);
    assert.equal(await audit.prune(new Date(T0.getTime() + 402 * DAY)), 1);
    assert.deepEqual(await problems(audit), ["record 9 is missing"]);
  });
});

Deno.test(`[${TEST_DB_KIND}] export pages through a long chain, since a time and up to a limit`, async () => {
  await withDb(async (open) => {
    const db = await open();
    const time = testClock();
    const audit = new AuditLog(db, "relay-a", time.clock);
    for (let n = 1; n <= 1200; n++) {
      time.set(new Date(T0.getTime() + n * 1000));
      void audit.record(event(n));
    }
    await audit.drain();
    const whole = await exported(audit);
    assert.equal(whole.records.length, 1200);
    assert.equal(verifyChain(whole.records, whole.anchor).ok, true);

    const since = await exported(audit, "t1", { since: new Date(T0.getTime() + 1001 * 1000) });
    assert.deepEqual(
      since.records.map((r) => r.seq),
      Array.from({ length: 200 }, (_, i) => 1001 + i),
    );
    assert.equal(verifyChain(since.records, since.anchor, { partialFront: true }).ok, true);

    const limited = await exported(audit, "t1", { limit: 700 });
    assert.equal(limited.records.length, 700);
    assert.equal(limited.records.at(-1)!.seq, 700);
    assert.equal(verifyChain(limited.records, limited.anchor, { partialTail: true }).ok, true);

    // Records appended after the anchor was read wait for the next export.
    const { anchor, records } = await audit.export("t1");
    await audit.record(event(1201));
    let count = 0;
    for await (const _ of records) count++;
    assert.deepEqual([anchor.head_seq, count], [1200, 1200]);
  });
});

Deno.test(`[${TEST_DB_KIND}] a record that cannot be written is logged, never thrown`, async () => {
  await withDb(async (open) => {
    const db = await open();
    const logged: string[] = [];
    const audit = new AuditLog(db, "relay-a", testClock().clock, (line) => logged.push(line));
    await audit.record(event(1, { retentionDays: 0 }));
    await audit.record(event(2, { tenantId: "" }));
    assert.equal(audit.failures, 2);
    assert.match(
      logged[0],
      /could not record "node\.revoke" on "n-1" .*retention must be 1-3650 days/,
    );
    // The database refusing the write (here: the table is gone) is logged the same way.
    await db.query("ALTER TABLE audit_log RENAME TO audit_log_gone");
    await audit.record(event(3));
    assert.equal(audit.failures, 3);
    assert.match(logged[2], /could not record "node\.revoke" on "n-3" \(tenant "t1", by "alice"\)/);
  });
});

Deno.test("details are bounded and never hold credentials", () => {
  const detail = JSON.parse(boundedDetail({
    name: "web-1",
    token: "abc",
    node_token: "def",
    nested: { authorization: "Bearer x", note: "eyJhbGciOi.eyJzdWIiOiJ4In0.c2ln" },
    token_jti: "jti-1",
    when: new Date(T0),
  }));
  assert.deepEqual(detail, {
    name: "web-1",
    token: "<redacted>",
    node_token: "<redacted>",
    nested: { authorization: "<redacted>", note: "<redacted>" },
    token_jti: "jti-1",
    when: T0.toISOString(),
  });
  const big = boundedDetail({ a: "x".repeat(1000), b: "y".repeat(5000), c: 3, d: [1, 2] });
  assert.ok(new TextEncoder().encode(big).length <= MAX_DETAIL_BYTES);
  assert.deepEqual(Object.keys(JSON.parse(big)), ["a", "c", "d", "_trimmed"]);
  assert.equal(JSON.parse(big)._trimmed, 1);
  const deep = JSON.parse(boundedDetail({ a: { b: { c: { d: { e: { f: { g: 1 } } } } } } }));
  assert.equal(deep.a.b.c.d.e.f, "<nested too deep>");
});
