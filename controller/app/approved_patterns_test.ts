import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { openDb } from "../store/db.ts";
import type { Operator } from "./operators.ts";
import { ApprovedPatterns, MAX_APPROVED_READ } from "./approved_patterns.ts";

const alice: Operator = {
  iss: "i",
  sub: "alice",
  exp: 0,
  tenant_id: "team-a",
  aegis_role: "operator",
  tenants: [],
};
const bob: Operator = { ...alice, sub: "bob", tenant_id: "team-b" };
const reader: Operator = { ...alice, sub: "rita", aegis_role: "readonly" };

const code = (c: string) => (e: unknown) => e instanceof AegisError && e.code === c;

Deno.test("ApprovedPatterns: add, list and remove stay inside the operator's tenants", async () => {
  const db = await openDb({ memory: true });
  try {
    const approved = new ApprovedPatterns(db);
    const added = await approved.add(alice, {
      pattern: "*.Web.Example.com",
      cidrs: ["10.0.0.0/8", "2001:db8::/32"],
    });
    assert.match(added.id, /^ap-[0-9a-f]{12}$/);
    assert.equal(added.pattern, "*.web.example.com");
    assert.deepEqual(added.cidrs, ["10.0.0.0/8", "2001:db8::/32"]);
    assert.equal(added.tenant_id, "team-a");
    assert.equal(added.created_by, "alice");

    // Another tenant's operator neither sees nor removes it; a reader sees but cannot change.
    assert.deepEqual(await approved.list(bob), []);
    await assert.rejects(approved.remove(bob, added.id), code("NOT_FOUND"));
    await assert.rejects(approved.add(bob, { ...added, tenant_id: "team-a" }), code("FORBIDDEN"));
    assert.equal((await approved.list(reader)).length, 1);
    await assert.rejects(
      approved.add(reader, { pattern: "a", cidrs: ["10.0.0.0/8"] }),
      code("FORBIDDEN"),
    );

    // Every tenant's rules are what enrollment reads.
    const rules = await approved.rules();
    assert.equal(rules.length, 1);
    assert.ok(rules[0].glob.matches("a.web.example.com"));
    assert.ok(rules[0].cidrs[1].contains("2001:db8::5"));
    assert.equal(rules[0].source, `approved pattern ${added.id}`);

    assert.equal((await approved.remove(alice, added.id)).id, added.id);
    assert.deepEqual(await approved.rules(), []);
  } finally {
    await db.close();
  }
});

Deno.test("ApprovedPatterns.add() refuses a bad glob, a bad CIDR or no network at all", async () => {
  const db = await openDb({ memory: true });
  try {
    const approved = new ApprovedPatterns(db);
    await assert.rejects(
      approved.add(alice, { pattern: "a b", cidrs: ["10.0.0.0/8"] }),
      code("INVALID_ARGUMENT"),
    );
    await assert.rejects(
      approved.add(alice, { pattern: "a", cidrs: ["10.0.0.1/8"] }),
      (e) =>
        code("INVALID_ARGUMENT")(e) &&
        /cidrs\[0\]: "10\.0\.0\.1\/8" has host bits set/.test((e as Error).message),
    );
    await assert.rejects(
      approved.add(alice, { pattern: "a", cidrs: [] }),
      (e) => code("INVALID_ARGUMENT")(e) && /source networks/.test((e as Error).message),
    );
    assert.deepEqual(await approved.list(alice), []);
  } finally {
    await db.close();
  }
});

// Review fixes: enrollment reads at most MAX_APPROVED_READ patterns; a read that would leave
// some out must refuse (a skipped pattern of one tenant would let another tenant's overlapping
// pattern decide alone), and an add that would pass the bound is refused up front.
Deno.test("ApprovedPatterns: more patterns than enrollment reads fail closed, and adds stop at the bound", async () => {
  const db = await openDb({ memory: true });
  try {
    const approved = new ApprovedPatterns(db);
    const fill = (from: number, to: number) =>
      db.query(
        `INSERT INTO approved_patterns (id, tenant_id, pattern, cidrs, created_by)
         SELECT 'ap-fill-' || i, 'tenant-' || (i / 200), 'h' || i || '.example.com',
                ARRAY['10.0.0.0/8'], 'filler'
           FROM generate_series($1::int, $2::int) AS i`,
        [from, to],
      );
    await fill(1, MAX_APPROVED_READ - 1);
    await approved.add(alice, { pattern: "a", cidrs: ["10.0.0.0/8"] });
    assert.equal((await approved.rules()).length, MAX_APPROVED_READ);
    await assert.rejects(
      approved.add(bob, { pattern: "b", cidrs: ["10.0.0.0/8"] }),
      (e) => code("CONFLICT")(e) && /controller already holds/.test((e as Error).message),
    );
    await fill(MAX_APPROVED_READ, MAX_APPROVED_READ); // past the bound, as a racing add could
    await assert.rejects(
      approved.rules(),
      (e) => code("ENROLL_NOT_TRUSTED")(e) && (e as AegisError).details.failed_check === "rules",
    );
  } finally {
    await db.close();
  }
});

// Review fix: every tokenless attempt read and re-parsed every pattern and CIDR (up to 4096 ×
// 64, most of a second of the controller's one thread); rows never change, so they compile once.
Deno.test("ApprovedPatterns.rules() compiles each stored pattern once", async () => {
  const db = await openDb({ memory: true });
  try {
    const approved = new ApprovedPatterns(db);
    const a = await approved.add(alice, { pattern: "*.a.example", cidrs: ["10.0.0.0/8"] });
    const first = await approved.rules();
    await approved.add(bob, { pattern: "*.b.example", cidrs: ["10.0.0.0/8"] });
    const second = await approved.rules();
    assert.equal(second.length, 2);
    assert.strictEqual(second[0], first[0], "an unchanged row reuses its compiled rule");
    await approved.remove(alice, a.id);
    const third = await approved.rules();
    assert.deepEqual(third.map((r) => r.tenant), ["team-b"]);
    assert.strictEqual(third[0], second[1]);
  } finally {
    await db.close();
  }
});
