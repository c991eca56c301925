import assert from "node:assert/strict";
import { AegisError } from "../../../shared/errors.ts";
import { openDb } from "../../store/db.ts";
import type { Queryable } from "../../store/db.ts";
import {
  describeTarget,
  matches,
  parseTarget,
  resolveTarget,
  type Target,
  TARGET_FORMS,
} from "./target.ts";

function parseError(input: string): AegisError {
  try {
    parseTarget(input);
  } catch (error) {
    if (error instanceof AegisError) return error;
    throw error;
  }
  assert.fail(`${JSON.stringify(input)} parsed`);
}

/** The column the caret line points at (1-based), after the two-space indent. */
function caretColumn(error: AegisError): number {
  return error.message.split("\n")[2].indexOf("^") - 2 + 1;
}

Deno.test("parseTarget() reads every accepted form", () => {
  const cases: [string, Target][] = [
    ["all", { kind: "all" }],
    ["  all  ", { kind: "all" }],
    ["tags=AnyOf(web)", { kind: "tags", mode: "any", tags: ["web"] }],
    ["tags=AnyOf(web,db)", { kind: "tags", mode: "any", tags: ["db", "web"] }],
    ["tags=AllOf( eu , web:1 ,a.b_c-d )", {
      kind: "tags",
      mode: "all",
      tags: ["a.b_c-d", "eu", "web:1"],
    }],
    ["tags=AllOf(web,web)", { kind: "tags", mode: "all", tags: ["web"] }],
    ["labels=region:eu", { kind: "labels", match: { region: "eu" } }],
    [
      "labels=region:eu, tier:web,k8s.io/zone:a:b",
      { kind: "labels", match: { region: "eu", tier: "web", "k8s.io/zone": "a:b" } },
    ],
    ["n-7a3b2f", { kind: "ids", ids: ["n-7a3b2f"] }],
    ["n-2, n-1,n-2", { kind: "ids", ids: ["n-1", "n-2"] }],
    ["ids=n-1,n-2", { kind: "ids", ids: ["n-1", "n-2"] }],
    [`n-${"f".repeat(32)}`, { kind: "ids", ids: [`n-${"f".repeat(32)}`] }],
  ];
  for (const [input, expected] of cases) assert.deepEqual(parseTarget(input), expected, input);
});

Deno.test("parseTarget() keeps a __proto__ label as a plain label", () => {
  const target = parseTarget("labels=__proto__:x");
  assert.ok(target.kind === "labels");
  assert.ok(Object.hasOwn(target.match, "__proto__"));
  assert.equal(Object.getPrototypeOf(target.match), Object.prototype);
  assert.equal(describeTarget(target), "labels=__proto__:x");
});

Deno.test("parseTarget() points at the offending character", () => {
  const error = parseError("tags=AnyOf(a b)");
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(
    error.message,
    [
      `bad --target at column 14: expected ")" or ","`,
      "  tags=AnyOf(a b)",
      "               ^",
    ].join("\n"),
  );
  assert.equal(error.hint, TARGET_FORMS);
  assert.deepEqual(error.details, { target: "tags=AnyOf(a b)", column: "14" });
});

Deno.test("parseTarget() reports malformed inputs at their exact column", () => {
  const cases: [string, number, RegExp][] = [
    ["", 1, /\(end of input\): expected "all", "tags=", "labels=", "ids=" or a node id/],
    ["tag=AnyOf(a)", 1, /expected "all", "tags=", "labels=", "ids=" or a node id/],
    ["  bogus", 3, /expected "all"/],
    ["all,n-1", 4, /expected end of input/],
    ["tags AnyOf(a)", 5, /expected "="/],
    ["tags=SomeOf(a)", 6, /expected "AnyOf" or "AllOf"/],
    ["tags=anyof(a)", 6, /expected "AnyOf" or "AllOf"/],
    ["tags=AnyOf a", 11, /expected "\("/],
    ["tags=AnyOf()", 12, /expected a tag/],
    ["tags=AnyOf(a,)", 14, /expected a tag/],
    ["tags=AnyOf(a,b", 15, /column 15 \(end of input\): expected "\)" or ","/],
    ["tags=AnyOf(a,b!)", 15, /expected "\)" or ","/],
    ["tags=AnyOf(a) x", 15, /expected end of input/],
    [`tags=AnyOf(${"t".repeat(65)})`, 12 + 64, /a tag has at most 64 characters/],
    ["labels=", 8, /\(end of input\): expected a label key/],
    ["labels=region", 14, /\(end of input\): expected ":"/],
    ["labels=region:", 15, /expected a label value/],
    ["labels=region:eu,", 18, /expected a label key/],
    ["labels=region:eu tier:web", 18, /expected "," or end of input/],
    ["labels=a:1,b:2,a:3", 16, /label "a" is given twice/],
    ["n-", 3, /expected a lowercase hex digit/],
    ["n-7aG", 5, /expected a lowercase hex digit/],
    ["n-7a3B,n-1", 6, /expected a lowercase hex digit/],
    ["n-1,,n-2", 5, /expected a node id/],
    ["n-1 n-2", 5, /expected "," or end of input/],
    ["ids=", 5, /expected a node id/],
    ["ids=x-1", 5, /expected a node id/],
    [`n-${"a".repeat(33)}`, 35, /a node id has at most 32 hex digits/],
    // Columns count characters, not UTF-16 code units.
    ["tags=AnyOf(😀,é)", 12, /expected a tag/],
    ["tags=AnyOf(a,é)", 14, /expected a tag/],
  ];
  for (const [input, column, message] of cases) {
    const error = parseError(input);
    assert.equal(error.code, "INVALID_ARGUMENT", input);
    assert.match(error.message, new RegExp(`^bad --target at column ${column}\\b`), input);
    assert.match(error.message.split("\n")[0], message, input);
    assert.equal(caretColumn(error), column, `caret of ${JSON.stringify(input)}`);
  }
});

Deno.test("parseTarget() keeps the caret aligned past control characters", () => {
  const error = parseError("tags=AnyOf(a\nb)");
  const [, shown, caret] = error.message.split("\n");
  assert.equal(shown, "  tags=AnyOf(a\uFFFDb)");
  assert.equal(caret, `  ${" ".repeat(12)}^`);
  assert.equal(caretColumn(error), 13);
});

Deno.test("describeTarget() renders canonically and round-trips through parseTarget()", () => {
  const cases: [string, string][] = [
    ["all", "all"],
    ["tags=AnyOf( web , db )", "tags=AnyOf(db,web)"],
    ["tags=AllOf(b,a,b)", "tags=AllOf(a,b)"],
    ["labels=tier:web, region:eu", "labels=region:eu,tier:web"],
    ["ids=n-2,n-1", "n-1,n-2"],
    ["n-a", "n-a"],
  ];
  for (const [input, canonical] of cases) {
    const target = parseTarget(input);
    assert.equal(describeTarget(target), canonical, input);
    assert.deepEqual(parseTarget(canonical), target, canonical);
  }
});

const web = { node_id: "n-1", tags: ["web", "eu"], labels: { region: "eu", tier: "web" } };

Deno.test("matches() applies each kind of target to one host", () => {
  const yes = [
    "all",
    "tags=AnyOf(db,web)",
    "tags=AllOf(eu,web)",
    "labels=region:eu",
    "labels=region:eu,tier:web",
    "n-1",
    "ids=n-2,n-1",
  ];
  const no = [
    "tags=AnyOf(db)",
    "tags=AllOf(web,db)",
    "labels=region:us",
    "labels=region:eu,tier:db",
    "labels=zone:eu",
    "labels=toString:x",
    "n-2",
  ];
  for (const text of yes) assert.equal(matches(parseTarget(text), web), true, text);
  for (const text of no) assert.equal(matches(parseTarget(text), web), false, text);
});

interface Row {
  node_id: string;
  tenant_id: string;
  name: string;
  status?: string;
  tags?: string[];
  labels?: Record<string, string>;
}

/** Each host its own public key: a live key belongs to one host only. */
async function insertHost(db: Queryable, row: Row): Promise<void> {
  await db.query(
    `INSERT INTO edge_daemons
       (node_id, tenant_id, name, public_key, key_fingerprint, status, status_since, tags, labels)
     VALUES ($1, $2, $3, $1, 'SHA256:x', $4, $5, $6::text[], $7::jsonb)`,
    [
      row.node_id,
      row.tenant_id,
      row.name,
      row.status ?? "connected",
      new Date("2025-01-01T00:00:00Z"),
      row.tags ?? [],
      JSON.stringify(row.labels ?? {}),
    ],
  );
}

const HOSTS: Row[] = [
  {
    node_id: "n-a1",
    tenant_id: "t-1",
    name: "web-2",
    tags: ["web", "eu"],
    labels: { region: "eu" },
  },
  { node_id: "n-a2", tenant_id: "t-1", name: "web-1", tags: ["web"], labels: { region: "us" } },
  {
    node_id: "n-a3",
    tenant_id: "t-1",
    name: "db-1",
    tags: ["db", "eu"],
    labels: { region: "eu", tier: "db" },
  },
  { node_id: "n-a0", tenant_id: "t-1", name: "web-1", tags: ["web", "eu"] },
  {
    node_id: "n-a4",
    tenant_id: "t-1",
    name: "old",
    status: "revoked",
    tags: ["web", "eu"],
    labels: { region: "eu" },
  },
  {
    node_id: "n-b1",
    tenant_id: "t-2",
    name: "b-web",
    tags: ["web", "eu"],
    labels: { region: "eu" },
  },
];

async function withFleet(fn: (db: Queryable) => Promise<void>): Promise<void> {
  const db = await openDb({ memory: true });
  try {
    for (const host of HOSTS) await insertHost(db, host);
    await fn(db);
  } finally {
    await db.close();
  }
}

async function resolved(db: Queryable, tenants: string[], text: string): Promise<string[]> {
  return (await resolveTarget(db, tenants, parseTarget(text))).map((h) => h.node_id);
}

Deno.test("resolveTarget() selects the tenant's live hosts in SQL, by name then node id", async () => {
  await withFleet(async (db) => {
    assert.deepEqual(await resolved(db, ["t-1"], "all"), ["n-a3", "n-a0", "n-a2", "n-a1"]);
    assert.deepEqual(await resolved(db, ["t-1"], "tags=AnyOf(db,nope)"), ["n-a3"]);
    assert.deepEqual(await resolved(db, ["t-1"], "tags=AnyOf(web)"), ["n-a0", "n-a2", "n-a1"]);
    assert.deepEqual(await resolved(db, ["t-1"], "tags=AllOf(web,eu)"), ["n-a0", "n-a1"]);
    assert.deepEqual(await resolved(db, ["t-1"], "labels=region:eu"), ["n-a3", "n-a1"]);
    assert.deepEqual(await resolved(db, ["t-1"], "labels=region:eu,tier:db"), ["n-a3"]);
    assert.deepEqual(await resolved(db, ["t-1"], "labels=region:mars"), []);
    assert.deepEqual(await resolved(db, ["t-1"], "n-a2,n-a3"), ["n-a3", "n-a2"]);
    const full = await resolveTarget(db, ["t-1"], parseTarget("n-a1"));
    assert.deepEqual(full[0].tags, ["web", "eu"]);
    assert.deepEqual(full[0].labels, { region: "eu" });
  });
});

Deno.test("resolveTarget() agrees with matches() on every live host", async () => {
  await withFleet(async (db) => {
    const texts = ["all", "tags=AnyOf(eu)", "tags=AllOf(db,eu)", "labels=region:eu", "n-a1,n-b1"];
    for (const text of texts) {
      const target = parseTarget(text);
      const expected = HOSTS.filter((h) => h.status !== "revoked")
        .filter((h) => matches(target, { tags: [], labels: {}, ...h }))
        .map((h) => h.node_id).sort();
      const got = await resolved(db, ["t-1", "t-2"], text);
      assert.deepEqual(got.sort(), expected, text);
    }
  });
});

Deno.test("resolveTarget() never reaches another tenant's hosts", async () => {
  await withFleet(async (db) => {
    assert.deepEqual(await resolved(db, ["t-2"], "tags=AnyOf(web)"), ["n-b1"]);
    assert.deepEqual(await resolved(db, ["t-2"], "labels=region:eu"), ["n-b1"]);
    assert.deepEqual(await resolved(db, [], "all"), []);
    assert.deepEqual(await resolved(db, ["t-1", "t-2"], "n-b1,n-a1"), ["n-b1", "n-a1"]);
  });
});

Deno.test("resolveTarget() names explicit ids that are missing or another tenant's", async () => {
  await withFleet(async (db) => {
    await assert.rejects(
      () => resolveTarget(db, ["t-1"], parseTarget("n-a1,n-b1")),
      { code: "NOT_FOUND", message: "no edge host n-b1" } as never,
    );
    await assert.rejects(
      () => resolveTarget(db, ["t-1"], parseTarget("ids=n-ff,n-a1,n-b1")),
      { code: "NOT_FOUND", message: "no edge hosts n-b1, n-ff" } as never,
    );
  });
});

Deno.test("resolveTarget() leaves out a revoked id without calling it missing", async () => {
  await withFleet(async (db) => {
    assert.deepEqual(await resolved(db, ["t-1"], "n-a4,n-a1"), ["n-a1"]);
    assert.deepEqual(await resolved(db, ["t-1"], "n-a4"), []);
  });
});
