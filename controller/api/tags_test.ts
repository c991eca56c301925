import assert from "node:assert/strict";
import { Hono } from "hono";
import { openDb } from "../store/db.ts";
import type { Queryable } from "../store/db.ts";
import type { Operator } from "../app/operators.ts";
import { operatorPrincipal } from "../app/identity.ts";
import type { ApiEnv } from "./auth.ts";
import { onApiError } from "./errors.ts";
import { tagRoutes } from "./tags.ts";

const OPERATORS: Record<string, Operator> = {
  alice: { iss: "i", sub: "alice", exp: 0, tenant_id: "t-a", aegis_role: "operator", tenants: [] },
  bob: { iss: "i", sub: "bob", exp: 0, tenant_id: "t-b", aegis_role: "admin", tenants: [] },
  rita: { iss: "i", sub: "rita", exp: 0, tenant_id: "t-a", aegis_role: "readonly", tenants: [] },
};

/** The v1 mount as routes.ts builds it, with the operator named by a header instead of a JWT. */
function app(db: Queryable): Hono<ApiEnv> {
  const root = new Hono<ApiEnv>();
  root.onError(onApiError(() => {}));
  const v1 = new Hono<ApiEnv>();
  v1.use("*", async (c, next) => {
    c.set("operator", operatorPrincipal(OPERATORS[c.req.header("x-operator") ?? ""]));
    await next();
  });
  tagRoutes(v1, { db });
  root.route("/v1", v1);
  return root;
}

async function send(
  api: Hono<ApiEnv>,
  method: "POST" | "DELETE",
  who: string,
  nodeId: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await api.request(`/v1/edge/hosts/${nodeId}/tags`, {
    method,
    headers: { "x-operator": who, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function withApi(fn: (api: Hono<ApiEnv>, db: Queryable) => Promise<void>) {
  const db = await openDb({ memory: true });
  try {
    for (const [nodeId, tenant] of [["n-a1", "t-a"], ["n-b1", "t-b"]]) {
      await db.query(
        `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
           status_since, tags)
         VALUES ($1, $2, $1, 'pk-' || $1, 'SHA256:x', 'connected', $3, '{base}')`,
        [nodeId, tenant, new Date("2025-01-01T00:00:00Z")],
      );
    }
    await fn(app(db), db);
  } finally {
    await db.close();
  }
}

Deno.test("POST and DELETE /v1/edge/hosts/:nodeId/tags add and remove tags", async () => {
  await withApi(async (api) => {
    assert.deepEqual(await send(api, "POST", "alice", "n-a1", { tags: ["web", "eu", "web"] }), {
      status: 200,
      json: { node_id: "n-a1", tags: ["base", "eu", "web"] },
    });
    assert.deepEqual(await send(api, "DELETE", "alice", "n-a1", { tags: ["base", "nope"] }), {
      status: 200,
      json: { node_id: "n-a1", tags: ["eu", "web"] },
    });
  });
});

Deno.test("tag routes answer 404 for another tenant's host, exactly as for a missing one", async () => {
  await withApi(async (api, db) => {
    for (const method of ["POST", "DELETE"] as const) {
      const foreign = await send(api, method, "alice", "n-b1", { tags: ["x"] });
      const missing = await send(api, method, "alice", "n-404", { tags: ["x"] });
      assert.equal(foreign.status, 404);
      assert.deepEqual(foreign.json, {
        error: { code: "NOT_FOUND", message: "no edge host n-b1" },
      });
      assert.deepEqual(missing.json, {
        error: { code: "NOT_FOUND", message: "no edge host n-404" },
      });
    }
    const [row] = await db.query<{ tags: string[] }>(
      "SELECT tags FROM edge_daemons WHERE node_id = 'n-b1'",
    );
    assert.deepEqual(row.tags, ["base"]);
    assert.equal((await send(api, "POST", "bob", "n-b1", { tags: ["x"] })).status, 200);
  });
});

Deno.test("tag routes answer 403 to a readonly operator", async () => {
  await withApi(async (api) => {
    for (const method of ["POST", "DELETE"] as const) {
      const { status, json } = await send(api, method, "rita", "n-a1", { tags: ["x"] });
      assert.equal(status, 403);
      assert.equal((json.error as { code: string }).code, "FORBIDDEN");
    }
  });
});

Deno.test("tag routes answer 400 naming the bad tag or field", async () => {
  await withApi(async (api) => {
    const bad = await send(api, "POST", "alice", "n-a1", { tags: ["ok", "no spaces"] });
    assert.equal(bad.status, 400);
    assert.match((bad.json.error as { message: string }).message, /invalid tag "no spaces"/);
    for (const body of [{}, { tags: [] }, { tags: "web" }, { tags: ["a"], extra: 1 }, "{nope"]) {
      const { status, json } = await send(api, "DELETE", "alice", "n-a1", body);
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal((json.error as { code: string }).code, "INVALID_ARGUMENT");
    }
  });
});
