import assert from "node:assert/strict";
import { Hono } from "hono";
import { type AuditAnchor, type AuditRecord, verifyChain } from "../../shared/audit_chain.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { AuditLog } from "../app/audit.ts";
import { operatorPrincipal } from "../app/identity.ts";
import type { Operator } from "../app/operators.ts";
import type { ApiEnv } from "./auth.ts";
import { auditRoutes } from "./audit.ts";
import { onApiError } from "./errors.ts";

const OPERATORS: Record<string, Operator> = {
  // A read-only operator may read its tenants' audit log: auditors usually are read-only.
  rita: {
    iss: "i",
    sub: "rita",
    exp: 0,
    tenant_id: "t-a",
    aegis_role: "readonly",
    tenants: ["t-c"],
  },
  bob: { iss: "i", sub: "bob", exp: 0, tenant_id: "t-b", aegis_role: "admin", tenants: [] },
};

/** The v1 mount as routes.ts builds it, with the operator named by a header instead of a JWT. */
function app(audit: AuditLog): Hono<ApiEnv> {
  const root = new Hono<ApiEnv>();
  root.onError(onApiError(() => {}));
  const v1 = new Hono<ApiEnv>();
  v1.use("*", async (c, next) => {
    c.set("operator", operatorPrincipal(OPERATORS[c.req.header("x-operator") ?? ""]));
    await next();
  });
  auditRoutes(v1, audit);
  root.route("/v1", v1);
  return root;
}

async function get(api: Hono<ApiEnv>, who: string, query = "") {
  const response = await api.request(`/v1/audit/export${query}`, {
    headers: { "x-operator": who },
  });
  const text = await response.text();
  return { response, lines: text.trim().split("\n").map((l) => JSON.parse(l)) };
}

async function withApi(fn: (api: Hono<ApiEnv>, audit: AuditLog) => Promise<void>) {
  const database = await testDatabase();
  try {
    const audit = new AuditLog(await database.open(), "r1", () => new Date("2026-05-01T00:00:00Z"));
    await fn(app(audit), audit);
  } finally {
    await database.cleanup();
  }
}

const record = (audit: AuditLog, tenantId: string, n: number) =>
  audit.record({
    tenantId,
    actor: { kind: "operator", issuer: "i", subject: "bob", context: "aegis-system-operator" },
    action: "tool.call",
    target: `n-1 cmd.run #${n}`,
    outcome: "ok",
    retentionDays: 90,
  });

Deno.test(`[${TEST_DB_KIND}] GET /v1/audit/export streams anchor, records and end`, async () => {
  await withApi(async (api, audit) => {
    // More than one page of records (the route reads 500 at a time).
    for (let n = 1; n <= 1100; n++) void record(audit, "t-a", n);
    await audit.drain();
    const { response, lines } = await get(api, "rita");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/x-ndjson");
    const [anchor, ...rest] = lines;
    const end = rest.pop();
    assert.equal(anchor.type, "anchor");
    assert.deepEqual(
      [anchor.tenant_id, anchor.head_seq, anchor.since, anchor.limit],
      ["t-a", 1100, null, null],
    );
    assert.deepEqual(end, { type: "end", records: 1100 });
    assert.ok(rest.every((l) => l.type === "record"));
    const records = rest.map(({ type: _, ...r }) => r as AuditRecord);
    const { type: _, since: __, limit: ___, ...chainAnchor } = anchor;
    assert.deepEqual(verifyChain(records, chainAnchor as AuditAnchor).problems, []);

    const limited = await get(api, "rita", "?limit=3&since=2026-01-01T00:00:00Z");
    assert.deepEqual(limited.lines.map((l) => l.type), [
      "anchor",
      "record",
      "record",
      "record",
      "end",
    ]);
    assert.deepEqual([limited.lines[0].limit, limited.lines[0].since], [
      3,
      "2026-01-01T00:00:00.000Z",
    ]);
  });
});

Deno.test(`[${TEST_DB_KIND}] an operator exports only the tenants its token grants`, async () => {
  await withApi(async (api, audit) => {
    await record(audit, "t-c", 1);
    const granted = await get(api, "rita", "?tenant_id=t-c");
    assert.equal(granted.response.status, 200);
    assert.equal(granted.lines.at(-1).records, 1);

    const refused = await get(api, "bob", "?tenant_id=t-a");
    assert.equal(refused.response.status, 403);
    assert.equal(refused.lines[0].error.code, "FORBIDDEN");
    // Its own tenant, with nothing recorded yet: an empty chain, anchored at the start.
    const empty = await get(api, "bob");
    assert.deepEqual(empty.lines.map((l) => l.type), ["anchor", "end"]);
    assert.equal(empty.lines[0].head_seq, 0);
  });
});

Deno.test(`[${TEST_DB_KIND}] export parameters are checked and bounded`, async () => {
  await withApi(async (api) => {
    for (
      const query of [
        "?since=yesterday",
        "?limit=0",
        "?limit=-1",
        "?limit=99999999999",
        "?limit=1e3",
        `?tenant_id=${"t".repeat(129)}`,
        `?since=${"2".repeat(65)}`,
      ]
    ) {
      const { response, lines } = await get(api, "rita", query);
      assert.equal(response.status, 400, query);
      assert.equal(lines[0].error.code, "INVALID_ARGUMENT", query);
    }
  });
});
