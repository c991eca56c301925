// The same assertions against both adapters: PGlite always, PostgreSQL when AEGIS_TEST_PG_DSN
// is set. A case that passes on one and fails on the other is an adapter bug, not a test bug.
import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { type Db, openDb } from "./db.ts";

const SINCE = new Date("2030-01-02T03:04:05.678Z");

const CASES: Record<string, (db: Db) => Promise<void>> = {
  "returns the same JS shapes for every column type": async (db) => {
    await db.query(
      `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
         status_since, capabilities, tags, reconnects, last_heartbeat_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::text[], $10, $11)`,
      [
        ...["n1", "t1", "edge-1", "AAAA", "fp", "connected"],
        SINCE,
        JSON.stringify({ gpu: true, n: [1] }),
        ["a", "b,c", 'q"t', "NULL", "", "x\\y"],
        3,
        null,
      ],
    );
    // The columns of the first migration: later ones add columns this test does not check.
    const [row] = await db.query(
      `SELECT node_id, tenant_id, name, public_key, key_fingerprint, status, status_since,
              last_heartbeat_at, capabilities, labels, tags, endpoint, relay_id, remote_addr,
              reconnects, token_jti, token_expires_at, enrollment_jti, created_at
         FROM edge_daemons WHERE node_id = $1`,
      ["n1"],
    );
    assert.ok(row.created_at instanceof Date);
    delete row.created_at;
    assert.deepEqual(row, {
      node_id: "n1",
      tenant_id: "t1",
      name: "edge-1",
      public_key: "AAAA",
      key_fingerprint: "fp",
      status: "connected",
      status_since: SINCE,
      last_heartbeat_at: null,
      capabilities: { gpu: true, n: [1] },
      labels: {},
      tags: ["a", "b,c", 'q"t', "NULL", "", "x\\y"],
      endpoint: "",
      relay_id: null,
      remote_addr: null,
      reconnects: 3,
      token_jti: null,
      token_expires_at: null,
      enrollment_jti: null,
    });
  },
  "parses arrays with NULL elements, booleans, JSON scalars and counts alike": async (db) => {
    const rows = await db.query(
      `SELECT ARRAY['x', NULL]::text[] AS arr, '{}'::text[] AS empty, $1::text[] AS param_arr,
         $2::jsonb AS scalar, $3::boolean AS flag, count(*)::int AS n, count(*) AS uncast,
         $4::timestamptz AS at, $5::int AS num, $6::text AS nothing`,
      [["y", null], JSON.stringify("str"), false, SINCE, 42, null],
    );
    assert.deepEqual(rows, [{
      arr: ["x", null],
      empty: [],
      param_arr: ["y", null],
      scalar: "str",
      flag: false,
      n: 1,
      uncast: 1,
      at: SINCE,
      num: 42,
      nothing: null,
    }]);
  },
  "commits a transaction and returns its value": async (db) => {
    const value = await db.transaction(async (tx) => {
      await tx.query(
        "INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES " +
          "($1, $2, $3, $4)",
        ["j1", "n1", "lost", SINCE],
      );
      return 7;
    });
    assert.equal(value, 7);
    assert.deepEqual(await db.query("SELECT jti FROM revoked_tokens"), [{ jti: "j1" }]);
  },
  "rolls back a transaction and rethrows the same error": async (db) => {
    const boom = new Error("boom");
    const thrown = await db.transaction(async (tx) => {
      await tx.query(
        "INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES " +
          "($1, $2, $3, $4)",
        ["j2", "n1", "lost", SINCE],
      );
      throw boom;
    }).catch((error) => error);
    assert.equal(thrown, boom);
    assert.deepEqual(await db.query("SELECT jti FROM revoked_tokens"), []);
  },
  "refuses the outer db inside a transaction instead of hanging": async (db) => {
    const thrown = await db.transaction(() => db.query("SELECT 1")).catch((error) => error);
    assert.ok(thrown instanceof AegisError);
    assert.equal(thrown.code, "INTERNAL");
    assert.match(thrown.message, /inside db\.transaction/);
    // The Db is still usable afterwards.
    assert.deepEqual(await db.query("SELECT 1::int AS one"), [{ one: 1 }]);
  },
  "passes SQL errors through with their SQLSTATE code": async (db) => {
    const insert = "INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES " +
      "('dup', 'n', 'r', now())";
    await db.query(insert);
    const dup = await db.query(insert).catch((error) => error);
    assert.equal(dup.code, "23505");
    const many = await db.query("SELECT 1; SELECT 2").catch((error) => error);
    assert.equal(many.code, "42601", "query() runs exactly one statement");
  },
  "refuses undefined params and odd channel names": async (db) => {
    await assert.rejects(() => db.query("SELECT $1::text", [undefined]), /\$1 is undefined/);
    await assert.rejects(() => db.listen("Mixed-Case", () => {}), /must match/);
    await assert.rejects(() => db.notify("a;b", "x"), /must match/);
  },
  "delivers notify payloads to listeners until unlisten": async (db) => {
    const got: string[] = [];
    const unlisten = await db.listen("aegis_test", (payload) => got.push(payload));
    await db.notify("aegis_test", "one");
    // Rolled-back notifications are never delivered; committed ones are.
    await db.transaction(async (tx) => {
      await tx.query("SELECT pg_notify('aegis_test', 'rolled back')");
      throw new Error("roll back");
    }).catch(() => {});
    await db.transaction(async (tx) => {
      await tx.query("SELECT pg_notify('aegis_test', 'two')");
    });
    await waitFor(() => got.length >= 2);
    await unlisten();
    await db.notify("aegis_test", "after");
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(got, ["one", "two"]);
  },
};

async function waitFor(done: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a notification");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const ADAPTERS: { kind: "pglite" | "postgres"; ignore: boolean }[] = [
  { kind: "pglite", ignore: false },
  { kind: "postgres", ignore: TEST_DB_KIND !== "postgres" },
];

for (const { kind, ignore } of ADAPTERS) {
  for (const [name, check] of Object.entries(CASES)) {
    Deno.test({
      name: `Db conformance (${kind}): ${name}`,
      ignore,
      async fn() {
        if (kind === "pglite") {
          const db = await openDb({ memory: true });
          try {
            return await check(db);
          } finally {
            await db.close();
          }
        }
        const database = await testDatabase();
        try {
          await check(await database.open());
        } finally {
          await database.cleanup();
        }
      },
    });
  }
}
