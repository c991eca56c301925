import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { type Db, openDb } from "./db.ts";
import { migrate, MIGRATIONS } from "./migrations.ts";
import { openPglite } from "./pglite.ts";

const TABLES = [
  "approved_patterns",
  "attest_challenges",
  "audit_heads",
  "audit_log",
  "console_login_links",
  "console_sessions",
  "edge_connections",
  "edge_daemons",
  "enrollment_tokens",
  "executions",
  "fleet_operations",
  "fleet_results",
  "relays",
  "revoked_tokens",
  "schema_migrations",
  "tool_calls",
  "used_nonces",
];

async function tables(db: Db): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = 'public' ORDER BY table_name`,
  );
  return rows.map((row) => row.name);
}

async function history(db: Db) {
  return await db.query<{ version: number; name: string; applied_at: Date }>(
    "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
  );
}

Deno.test("openDb() applies migrations once (pglite)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await openDb({ dataDir: dir });
    assert.deepEqual(await tables(first), TABLES);
    const before = await history(first);
    assert.deepEqual(
      before.map((row) => [row.version, row.name]),
      MIGRATIONS.map((m) => [m.version, m.name]),
    );
    assert.ok(before[0].applied_at instanceof Date);
    await first.close();

    const again = await openPglite({ dataDir: dir });
    assert.deepEqual(await migrate(again), [], "re-opening applies nothing");
    assert.deepEqual(await history(again), before);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "openDb() applies migrations once (postgres)",
  ignore: TEST_DB_KIND !== "postgres",
  async fn() {
    const database = await testDatabase();
    try {
      const first = await database.open();
      assert.deepEqual(await tables(first), TABLES);
      const before = await history(first);
      const second = await database.open();
      assert.deepEqual(await history(second), before);
    } finally {
      await database.cleanup();
    }
  },
});

Deno.test({
  name: "openDb() lets several relays migrate one PostgreSQL database at once",
  ignore: TEST_DB_KIND !== "postgres",
  async fn() {
    const database = await testDatabase();
    try {
      // Without the advisory lock these collide on CREATE TABLE or the version primary key.
      const dbs = await Promise.all(Array.from({ length: 6 }, () => database.open()));
      const rows = await dbs[0].query("SELECT version FROM schema_migrations");
      assert.deepEqual(rows, MIGRATIONS.map((m) => ({ version: m.version })));
    } finally {
      await database.cleanup();
    }
  },
});

Deno.test("migrate() runs each migration in its own transaction", async () => {
  const db = await openPglite({ memory: true });
  try {
    const ok = { version: 101, name: "a", sql: "CREATE TABLE a (x int);" };
    const broken = { version: 102, name: "b", sql: "CREATE TABLE b (x int); SELECT 1/0;" };
    await assert.rejects(() => migrate(db, [...MIGRATIONS, ok, broken]), /division by zero/);
    const versions = await db.query("SELECT version FROM schema_migrations ORDER BY version");
    assert.deepEqual(versions, [...MIGRATIONS.map((m) => ({ version: m.version })), {
      version: 101,
    }]);
    assert.ok(!(await tables(db)).includes("b"), "the failed migration left nothing behind");

    const fixed = { ...broken, sql: "CREATE TABLE b (x int);" };
    assert.deepEqual(await migrate(db, [...MIGRATIONS, ok, fixed]), [102]);
  } finally {
    await db.close();
  }
});

Deno.test("migrate() refuses migrations listed out of order", async () => {
  const db = await openPglite({ memory: true });
  try {
    const list = [{ version: 3, name: "c", sql: "" }, { version: 2, name: "b", sql: "" }];
    await assert.rejects(() => migrate(db, list), /migration 2 is out of order/);
  } finally {
    await db.close();
  }
});
