import assert from "node:assert/strict";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { type CallEnd, CallRecords, type CallStart } from "./call_records.ts";

/** The real database, counting the statements sent to it. */
function counting(db: Queryable): Queryable & { statements: number } {
  const counted = {
    statements: 0,
    query<T>(sql: string, params?: unknown[]) {
      counted.statements++;
      return db.query<T>(sql, params);
    },
  };
  return counted as Queryable & { statements: number };
}

const start = (callId: string, at = new Date("2026-01-01T00:00:00Z")): CallStart => ({
  call_id: callId,
  node_id: "n-1",
  tenant_id: "t1",
  tool: "cmd.run",
  summary: "echo hi",
  arguments: JSON.stringify({ argv: ["echo", "hi"], env: { A: "<redacted>" } }),
  requested_by: "alice",
  relay_id: "r1",
  started_at: at,
});

const end = (callId: string, status = "ok"): CallEnd => ({
  call_id: callId,
  status,
  exit_code: status === "ok" ? 0 : null,
  error: status === "ok" ? null : "the host is not connected",
  finished_at: new Date("2026-01-01T00:00:01.5Z"),
  duration_ms: 1500,
  output_bytes: 3,
  truncated: false,
});

async function rows(db: Queryable) {
  return await db.query<Record<string, unknown>>(
    `SELECT call_id, status, exit_code, error, arguments, started_at, finished_at, duration_ms,
            output_bytes, truncated, relay_id FROM tool_calls ORDER BY call_id`,
  );
}

Deno.test(`[${TEST_DB_KIND}] CallRecords writes a batch of starts with one statement`, async () => {
  const database = await testDatabase();
  try {
    const db = counting(await database.open());
    const records = new CallRecords(db);
    await Promise.all(["c1", "c2", "c3"].map((id) => records.started(start(id))));
    assert.equal(db.statements, 1);
    const written = await rows(db);
    assert.deepEqual(written.map((r) => [r.call_id, r.status, r.finished_at]), [
      ["c1", "running", null],
      ["c2", "running", null],
      ["c3", "running", null],
    ]);
    assert.deepEqual(written[0].arguments, { argv: ["echo", "hi"], env: { A: "<redacted>" } });
    assert.deepEqual(written[0].started_at, new Date("2026-01-01T00:00:00Z"));
    assert.equal(written[0].output_bytes, 0);
    assert.equal(written[0].truncated, false);
  } finally {
    await database.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] CallRecords ends calls in order: a start and its end in one batch make one row`, async () => {
  const database = await testDatabase();
  try {
    const db = counting(await database.open());
    const records = new CallRecords(db);
    await records.started(start("c1"));
    const before = db.statements;
    // c1 started in an earlier batch (an UPDATE), c2 starts and ends in this one (one INSERT).
    await Promise.all([
      records.ended(end("c1")),
      records.started(start("c2")),
      records.ended(end("c2", "offline")),
    ]);
    assert.equal(db.statements - before, 2, "one INSERT and one UPDATE for the batch");
    const written = await rows(db);
    assert.deepEqual(written.map((r) => [r.call_id, r.status, r.exit_code, r.error]), [
      ["c1", "ok", 0, null],
      ["c2", "offline", null, "the host is not connected"],
    ]);
    assert.deepEqual(written[0].finished_at, new Date("2026-01-01T00:00:01.5Z"));
    assert.equal(written[1].duration_ms, 1500);
    assert.equal(written[1].output_bytes, 3);
  } finally {
    await database.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] CallRecords: a row the database refuses fails its own caller, not its batch`, async () => {
  const database = await testDatabase();
  try {
    const db = await database.open();
    const records = new CallRecords(db);
    await records.started(start("c1"));
    // The same call id again: the batch's INSERT fails on that row, so the batch is written row
    // by row (batch_writer.ts) and only the duplicate's caller hears of it.
    const results = await Promise.allSettled([
      records.started(start("c1")),
      records.started(start("c2")),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "fulfilled"]);
    await records.started(start("c3"));
    assert.deepEqual((await rows(db)).map((r) => r.call_id), ["c1", "c2", "c3"]);
  } finally {
    await database.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] CallRecords ends several earlier calls with one UPDATE, others untouched`, async () => {
  const database = await testDatabase();
  try {
    const db = counting(await database.open());
    const records = new CallRecords(db);
    await Promise.all(["c1", "c2", "c3"].map((id) => records.started(start(id))));
    const before = db.statements;
    // Two ends in one batch go through the jsonb_to_recordset UPDATE; a lone end through the
    // one-row UPDATE: both must write the same columns.
    await Promise.all([records.ended(end("c1")), records.ended(end("c3", "offline"))]);
    assert.equal(db.statements - before, 1, "one UPDATE for the batch");
    await records.ended(end("c2", "offline"));
    const written = await rows(db);
    assert.deepEqual(written.map((r) => [r.call_id, r.status, r.exit_code, r.error]), [
      ["c1", "ok", 0, null],
      ["c2", "offline", null, "the host is not connected"],
      ["c3", "offline", null, "the host is not connected"],
    ]);
    for (const row of written) {
      assert.deepEqual(row.finished_at, new Date("2026-01-01T00:00:01.5Z"));
      assert.equal(row.duration_ms, 1500);
      assert.equal(row.output_bytes, 3);
      assert.equal(row.truncated, false);
    }
  } finally {
    await database.cleanup();
  }
});
