import assert from "node:assert/strict";
import { openDb } from "../store/db.ts";
import type { Queryable } from "../store/db.ts";
import type { Operator } from "./operators.ts";
import { addTags, isTagChar, MAX_TAGS_PER_HOST, removeTags, validateTags } from "./tags.ts";

const alice: Operator = {
  iss: "i",
  sub: "alice",
  exp: 0,
  tenant_id: "u-1",
  aegis_role: "operator",
  tenants: ["team-a"],
};
const reader: Operator = { ...alice, sub: "rita", aegis_role: "readonly" };

async function insertHost(db: Queryable, nodeId: string, tenantId: string, tags: string[] = []) {
  await db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
       status_since, tags)
     VALUES ($1, $2, $1, 'pk-' || $1, 'SHA256:x', 'connected', $3, $4::text[])`,
    [nodeId, tenantId, new Date("2025-01-01T00:00:00Z"), tags],
  );
}

async function withHosts(fn: (db: Queryable) => Promise<void>): Promise<void> {
  const db = await openDb({ memory: true });
  try {
    await insertHost(db, "n-01", "u-1", ["web"]);
    await insertHost(db, "n-02", "team-a");
    await insertHost(db, "n-99", "someone-else", ["secret"]);
    await fn(db);
  } finally {
    await db.close();
  }
}

async function tagsOf(db: Queryable, nodeId: string): Promise<string[]> {
  const rows = await db.query<{ tags: string[] }>(
    "SELECT tags FROM edge_daemons WHERE node_id = $1",
    [nodeId],
  );
  return rows[0].tags;
}

Deno.test("validateTags() sorts, dedupes and names the first bad tag", () => {
  assert.deepEqual(validateTags(["web", "eu:west", "a.b_c-D", "web"]), [
    "a.b_c-D",
    "eu:west",
    "web",
  ]);
  assert.throws(() => validateTags([]), { code: "INVALID_ARGUMENT" } as never);
  for (const bad of ["we b", "", "x".repeat(65), "café", "a,b"]) {
    assert.throws(
      () => validateTags(["ok", bad]),
      {
        code: "INVALID_ARGUMENT",
        message: `invalid tag ${JSON.stringify(bad)}: tags are 1 to 64 letters, digits or _ . : -`,
      } as never,
    );
  }
  validateTags(["x".repeat(64)]);
  const many = Array.from({ length: MAX_TAGS_PER_HOST + 1 }, (_, i) => `t${i}`);
  assert.throws(
    () => validateTags(many),
    { message: /33 tags given; a host has at most 32/ } as never,
  );
  assert.equal(isTagChar(":"), true);
  assert.equal(isTagChar(","), false);
});

Deno.test("addTags() merges into the host's tags and returns them sorted and unique", async () => {
  await withHosts(async (db) => {
    assert.deepEqual(await addTags(db, alice, "n-01", ["eu", "web", "Db"]), ["Db", "eu", "web"]);
    assert.deepEqual(await tagsOf(db, "n-01"), ["Db", "eu", "web"]);
    assert.deepEqual(await addTags(db, alice, "n-02", ["b", "a"]), ["a", "b"], "team tenant");
  });
});

Deno.test("removeTags() drops the given tags and ignores ones the host lacks", async () => {
  await withHosts(async (db) => {
    await addTags(db, alice, "n-01", ["eu", "db"]);
    assert.deepEqual(await removeTags(db, alice, "n-01", ["web", "nope"]), ["db", "eu"]);
    assert.deepEqual(await removeTags(db, alice, "n-01", ["db", "eu"]), []);
    assert.deepEqual(await tagsOf(db, "n-01"), []);
  });
});

Deno.test("addTags() and removeTags() answer for another tenant's host as for a missing one", async () => {
  await withHosts(async (db) => {
    for (const change of [addTags, removeTags]) {
      for (const nodeId of ["n-99", "n-404"]) {
        await assert.rejects(
          () => change(db, alice, nodeId, ["x"]),
          { code: "NOT_FOUND", message: `no edge host ${nodeId}` } as never,
        );
      }
    }
    assert.deepEqual(await tagsOf(db, "n-99"), ["secret"]);
  });
});

Deno.test("addTags() and removeTags() refuse readonly operators", async () => {
  await withHosts(async (db) => {
    for (const change of [addTags, removeTags]) {
      await assert.rejects(
        () => change(db, reader, "n-01", ["x"]),
        { code: "FORBIDDEN", message: /role "readonly" cannot change tags/ } as never,
      );
    }
    assert.deepEqual(await tagsOf(db, "n-01"), ["web"]);
  });
});

Deno.test("addTags() refuses to take a host past 32 tags and changes nothing", async () => {
  await withHosts(async (db) => {
    const first = Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    await addTags(db, alice, "n-01", first);
    await assert.rejects(
      () => addTags(db, alice, "n-01", ["x", "y", "web"]),
      {
        code: "INVALID_ARGUMENT",
        message: "edge host n-01 would have 33 tags; a host has at most 32",
      } as never,
    );
    assert.equal((await tagsOf(db, "n-01")).length, 31);
    assert.equal((await addTags(db, alice, "n-01", ["x", "web"])).length, 32);
  });
});

Deno.test("addTags() keeps both of two concurrent edits", async () => {
  await withHosts(async (db) => {
    await Promise.all([
      addTags(db, alice, "n-01", ["a"]),
      addTags(db, alice, "n-01", ["b"]),
      removeTags(db, alice, "n-01", ["web"]),
    ]);
    assert.deepEqual(await tagsOf(db, "n-01"), ["a", "b"]);
  });
});
