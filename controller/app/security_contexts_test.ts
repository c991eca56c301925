// What a security context allows one caller: tools narrowed by kind, writer rights and roles;
// limits with the tenant's and the user's overrides; the ceiling rule; tiers matched without case.
import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { SecuritySchema } from "../security_config.ts";
import { EDGE_TOOL_NAMES, EDGE_TOOLS, type EdgeToolName, traitsOf } from "./edge_tools.ts";
import { EDGE_ROLES, OPERATOR_CONTEXT, operatorPrincipal, type Principal } from "./identity.ts";
import { requireWithin, type ResolvedContext, SecurityContexts } from "./security_contexts.ts";

function operator(role: "admin" | "operator" | "readonly", roles?: string[]): Principal {
  return operatorPrincipal(
    {
      iss: "https://ops.test",
      sub: `op-${role}`,
      exp: 0,
      tenant_id: "t1",
      aegis_role: role,
      tenants: [],
    },
    roles,
  );
}

function consumer(sub: string, context: string, roles: string[] = []): Principal {
  return {
    iss: "https://users.test",
    sub,
    exp: 0,
    tenant_id: `user-${sub}`,
    tenants: [],
    aegis_role: "operator",
    kind: "consumer",
    context,
    tier: "Pro",
    roles,
  };
}

const code = (c: string) => (error: unknown) => error instanceof AegisError && error.code === c;
const sorted = (tools: Iterable<EdgeToolName>) => [...tools].sort();

Deno.test("resolve() never gives a consumer an operator-only tool", () => {
  const contexts = new SecurityContexts();
  // Even the operator context, asked for by a consumer, loses every operator-only tool.
  const resolved = contexts.resolve(
    consumer("ann", "zaru-pro", Object.values(EDGE_ROLES)),
    OPERATOR_CONTEXT,
  );
  assert.deepEqual(
    [...resolved.tools].filter((tool) => EDGE_TOOLS[tool].operatorOnly),
    [],
  );
  assert.ok(resolved.tools.has("aegis.edge.command.run"));
  // An operator with the fleet role holds them.
  const admin = contexts.resolve(operator("admin"));
  assert.equal(admin.name, OPERATOR_CONTEXT);
  assert.deepEqual(sorted(admin.tools), sorted(EDGE_TOOL_NAMES));
});

Deno.test("resolve() drops writing tools for a readonly operator", () => {
  const resolved = new SecurityContexts().resolve(operator("readonly", Object.values(EDGE_ROLES)));
  assert.deepEqual(
    sorted(resolved.tools),
    sorted(EDGE_TOOL_NAMES.filter((tool) => !EDGE_TOOLS[tool].writes)),
  );
  assert.ok(resolved.tools.has("aegis.edge.fleet.results"), "reading fleet results is no write");
  assert.ok(!resolved.tools.has("aegis.edge.command.run"));
});

Deno.test("resolve() drops role-gated tools from an identity without the role", () => {
  const contexts = new SecurityContexts();
  // A token naming its roles gets exactly those: no fleet role, no fleet tools.
  const enroller = contexts.resolve(operator("admin", [EDGE_ROLES.enroll]));
  assert.ok(enroller.tools.has("aegis.edge.enrollment_token.issue"));
  assert.ok(enroller.tools.has("aegis.edge.hosts.revoke"), "revoking needs no edge role");
  for (const tool of EDGE_TOOL_NAMES.filter((t) => traitsOf(t).role === EDGE_ROLES.fleetManage)) {
    assert.ok(!enroller.tools.has(tool), tool);
  }
  // A consumer without the enroll role cannot issue enrollment tokens; with it, it can.
  assert.ok(
    !contexts.resolve(consumer("ann", "zaru-pro")).tools.has("aegis.edge.enrollment_token.issue"),
  );
  assert.ok(
    contexts.resolve(consumer("ann", "zaru-pro", [EDGE_ROLES.enroll])).tools.has(
      "aegis.edge.enrollment_token.issue",
    ),
  );
  // A token with no roles claim gets its aegis_role's defaults.
  assert.ok(contexts.resolve(operator("operator")).tools.has("aegis.edge.fleet.exec"));
});

Deno.test("resolve() applies the tenant's overrides, then the user's", () => {
  const contexts = new SecurityContexts(SecuritySchema.parse({
    tenants: {
      "user-ann": { executions_per_minute: 1, max_timeout_secs: 120 },
      t2: { max_concurrent: 9 },
    },
    users: { ann: { executions_per_minute: 2, max_concurrent: null } },
  }));
  const ann = contexts.resolve(consumer("ann", "zaru-pro"));
  assert.equal(ann.executions_per_minute, 2, "the user's override wins");
  assert.equal(ann.max_timeout_secs, 120, "the tenant's applies where the user sets nothing");
  assert.equal(ann.max_concurrent, null, "null switches a limit off");
  assert.equal(ann.executions_per_day, 200, "the context's where neither overrides");
  const ben = contexts.resolve({ ...consumer("ben", "zaru-pro"), tenant_id: "user-ann" });
  assert.equal(ben.executions_per_minute, 1);
  assert.equal(ben.max_concurrent, 5);
  // The tenant the work acts on, not the caller's own, picks the tenant's overrides.
  assert.equal(contexts.resolve(consumer("cy", "zaru-pro"), undefined, "t2").max_concurrent, 9);
  // Names that every object inherits match no override.
  const odd = contexts.resolve({ ...consumer("constructor", "zaru-pro"), tenant_id: "toString" });
  assert.equal(odd.executions_per_minute, 10);
});

Deno.test("an unknown context is refused, whatever objects inherit", () => {
  const contexts = new SecurityContexts();
  for (const name of ["zaru-gold", "constructor", "__proto__", "toString"]) {
    assert.throws(
      () => contexts.resolve(consumer("ann", "zaru-pro"), name),
      code("INVALID_ARGUMENT"),
    );
    assert.equal(contexts.has(name), false, name);
  }
  assert.deepEqual(contexts.names.sort(), [
    OPERATOR_CONTEXT,
    "zaru-business",
    "zaru-enterprise",
    "zaru-free",
    "zaru-pro",
  ]);
});

Deno.test("tiers are looked up without case", () => {
  const contexts = new SecurityContexts();
  for (const tier of ["Pro", "pro", "PRO", "pRo"]) {
    assert.equal(contexts.contextForTier(tier), "zaru-pro");
  }
  assert.equal(contexts.contextForTier("Enterprise"), "zaru-enterprise");
  assert.equal(contexts.contextForTier("gold"), undefined);
  assert.equal(contexts.contextForTier("constructor"), undefined);
  const custom = new SecurityContexts(
    SecuritySchema.parse({ tiers: { "ZARU-Premium": "zaru-business" } }),
  );
  assert.equal(custom.contextForTier("zaru-premium"), "zaru-business");
  assert.equal(custom.contextForTier("Pro"), undefined, "configured tiers replace the defaults");
});

Deno.test("requireTool() refuses a tool the context does not hold, or no tool at all", () => {
  const contexts: SecurityContexts = new SecurityContexts();
  const free = contexts.resolve(consumer("fay", "zaru-free"));
  contexts.requireTool(free, "aegis.edge.command.run");
  assert.throws(
    () => contexts.requireTool(free, "aegis.edge.enrollment_token.issue"),
    code("FORBIDDEN"),
  );
  assert.throws(() => contexts.requireTool(free, "aegis.edge.fleet.exec"), code("FORBIDDEN"));
  assert.throws(() => contexts.requireTool(free, "not.a.tool"), code("FORBIDDEN"));
});

Deno.test("the ceiling rule: narrower passes, any broader tool or limit is named", () => {
  const contexts = new SecurityContexts();
  const ann = consumer("ann", "zaru-enterprise", [EDGE_ROLES.enroll]);
  const at = (name: string) => contexts.resolve(ann, name);
  const names = ["zaru-free", "zaru-pro", "zaru-business", "zaru-enterprise"];
  for (const [i, child] of names.entries()) {
    for (const [j, parent] of names.entries()) {
      if (i <= j) requireWithin(at(child), at(parent));
      else assert.throws(() => requireWithin(at(child), at(parent)), code("CONTEXT_CEILING"));
    }
  }
  const error = (() => {
    try {
      requireWithin(at("zaru-pro"), at("zaru-free"));
    } catch (e) {
      return e as AegisError;
    }
    throw new Error("pro is broader than free");
  })();
  assert.match(error.message, /tools aegis\.edge\.enrollment_token\.issue/);
  for (
    const key of [
      "executions_per_minute",
      "executions_per_day",
      "max_timeout_secs",
      "max_concurrent",
    ]
  ) {
    assert.match(error.message, new RegExp(key));
  }
  // No limit is the highest limit: unlimited under limited is broader, limited under unlimited not.
  const base: ResolvedContext = {
    name: "base",
    tools: new Set(),
    executions_per_minute: 5,
    executions_per_day: null,
    max_timeout_secs: 60,
    max_concurrent: 1,
    audit_retention_days: 7,
  };
  assert.throws(
    () => requireWithin({ ...base, name: "c", max_concurrent: null }, base),
    /max_concurrent/,
  );
  requireWithin({ ...base, executions_per_day: 3 }, base);
  // The audit retention is no power over anything: a child may keep its records longer.
  requireWithin({ ...base, audit_retention_days: 365 }, base);
});
