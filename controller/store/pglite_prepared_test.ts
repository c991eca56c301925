import assert from "node:assert/strict";
import { openDb } from "./db.ts";

// The prepared-statement path must behave like PGlite's query(): same rows, same errors, and a
// statement whose table changed under it is prepared again rather than failing forever.
Deno.test("PGlite prepared statements keep errors, survive DDL and reuse across calls", async () => {
  const db = await openDb({ memory: true });
  try {
    await db.query("CREATE TABLE prep_t (k text PRIMARY KEY, v int)");
    const insert = "INSERT INTO prep_t (k, v) VALUES ($1, $2) RETURNING k, v";
    assert.deepEqual(await db.query(insert, ["a", 1]), [{ k: "a", v: 1 }]);
    await assert.rejects(() => db.query(insert, ["a", 2]), { code: "23505" });
    // The connection is usable after the error, and the cached statement still runs.
    assert.deepEqual(await db.query(insert, ["b", 2]), [{ k: "b", v: 2 }]);
    const select = "SELECT * FROM prep_t ORDER BY k";
    assert.deepEqual((await db.query(select)).length, 2);
    // A column added changes the cached statement's result type: it is prepared again.
    await db.query("ALTER TABLE prep_t ADD COLUMN w text");
    const rows = await db.query(select);
    assert.deepEqual(rows[0], { k: "a", v: 1, w: null });
    // Inside a transaction, and rolled back with it.
    await assert.rejects(() =>
      db.transaction(async (tx) => {
        await tx.query(insert, ["c", 3]);
        throw new Error("roll back");
      })
    );
    assert.deepEqual(await db.query("SELECT k FROM prep_t WHERE k = $1", ["c"]), []);
    // Many distinct statements: the oldest are closed, all still answer.
    for (let i = 0; i < 300; i++) {
      assert.deepEqual(await db.query(`SELECT ${i}::int AS n`), [{ n: i }]);
    }
    assert.deepEqual(await db.query(`SELECT 0::int AS n`), [{ n: 0 }]);
  } finally {
    await db.close();
  }
});

// Migrations change tables inside a transaction, where a stale statement cannot be prepared
// again on the spot: a script drops every prepared statement, so the next run prepares anew.
Deno.test("PGlite: a statement prepared before a migration script still runs in its transaction", async () => {
  const { openPglite } = await import("./pglite.ts");
  const db = await openPglite({ memory: true });
  try {
    await db.query("CREATE TABLE prep_m (k text PRIMARY KEY)");
    const select = "SELECT * FROM prep_m ORDER BY k";
    assert.deepEqual(await db.query(select), []);
    const rows = await db.transaction(async (tx) => {
      await tx.exec("ALTER TABLE prep_m ADD COLUMN v int; INSERT INTO prep_m VALUES ('a', 1)");
      return await tx.query(select);
    });
    assert.deepEqual(rows, [{ k: "a", v: 1 }]);
  } finally {
    await db.close();
  }
});
