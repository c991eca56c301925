// The security: section of aegis-config.yaml: the seed's defaults, and every configuration that
// would let a consumer reach an operator's tools or an unknown context refused up front.
import assert from "node:assert/strict";
import { parseControllerConfig } from "./config.ts";
import { EDGE_TOOL_NAMES, EDGE_TOOLS } from "./app/edge_tools.ts";
import { OPERATOR_CONTEXT } from "./app/identity.ts";
import { DEFAULT_TIERS, SecuritySchema } from "./security_config.ts";

const MIN = 60;
const HOUR = 3600;

/** The messages a refused section yields (it must be refused). */
function issues(security: unknown): string[] {
  const result = SecuritySchema.safeParse(security);
  assert.equal(result.success, false, "the section should be refused");
  return result.error!.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

Deno.test("security defaults are the seed's tiers", () => {
  const { contexts, tiers } = SecuritySchema.parse({});
  const limits = (name: string) => {
    const { executions_per_minute, executions_per_day, max_timeout_secs, max_concurrent } =
      contexts[name];
    return [executions_per_minute, executions_per_day, max_timeout_secs, max_concurrent];
  };
  assert.deepEqual(limits("zaru-free"), [3, 20, 5 * MIN, 1]);
  assert.deepEqual(limits("zaru-pro"), [10, 200, 30 * MIN, 5]);
  assert.deepEqual(limits("zaru-business"), [30, 1_000, 4 * HOUR, 50]);
  assert.deepEqual(limits("zaru-enterprise"), [100, 10_000, 24 * HOUR, null]);
  assert.deepEqual(limits(OPERATOR_CONTEXT), [null, null, 24 * HOUR, null]);
  assert.deepEqual(tiers, DEFAULT_TIERS);
  assert.deepEqual(tiers, {
    Free: "zaru-free",
    Pro: "zaru-pro",
    Business: "zaru-business",
    Enterprise: "zaru-enterprise",
  });
  // No consumer context holds an operator-only tool; the operator's holds every tool.
  for (const name of ["zaru-free", "zaru-pro", "zaru-business", "zaru-enterprise"]) {
    assert.deepEqual(contexts[name].tools.filter((tool) => EDGE_TOOLS[tool].operatorOnly), []);
  }
  assert.deepEqual(contexts[OPERATOR_CONTEXT].tools, EDGE_TOOL_NAMES);
  // Free lacks what the paid tiers have: issuing enrollment tokens.
  assert.ok(!contexts["zaru-free"].tools.includes("aegis.edge.enrollment_token.issue"));
  assert.ok(contexts["zaru-pro"].tools.includes("aegis.edge.enrollment_token.issue"));
});

Deno.test("parsing twice never shares a default's tool list", () => {
  const first = SecuritySchema.parse({});
  first.contexts["zaru-pro"].tools.length = 0;
  assert.ok(SecuritySchema.parse({}).contexts["zaru-pro"].tools.length > 0);
});

Deno.test("a context change merges key by key; a new context names its tools", () => {
  const { contexts } = SecuritySchema.parse({
    contexts: {
      "zaru-pro": { executions_per_minute: 12 },
      "ci-bots": { tools: ["aegis.edge.hosts.list"], max_concurrent: 2 },
    },
    tiers: { Pro: "zaru-pro", Bots: "ci-bots" },
  });
  assert.equal(contexts["zaru-pro"].executions_per_minute, 12);
  assert.equal(contexts["zaru-pro"].executions_per_day, 200);
  assert.deepEqual(contexts["ci-bots"].tools, ["aegis.edge.hosts.list"]);
  assert.equal(contexts["ci-bots"].max_concurrent, 2);
  assert.match(
    issues({ contexts: { "ci-bots": { max_concurrent: 2 } } }).join("\n"),
    /contexts\.ci-bots: context "ci-bots" is new: list its tools/,
  );
});

Deno.test("a tier's context holding an operator-only tool is refused", () => {
  const found = issues({
    contexts: { "zaru-pro": { tools: ["aegis.edge.hosts.list", "aegis.edge.fleet.exec"] } },
  });
  assert.deepEqual(found, [
    'contexts.zaru-pro.tools: context "zaru-pro" serves consumer tier "Pro" and so cannot hold ' +
    "operator-only tools: aegis.edge.fleet.exec",
  ]);
  // The same tools in a context no tier maps to are fine (operators narrow to it).
  SecuritySchema.parse({
    contexts: { "ops-fleet": { tools: ["aegis.edge.fleet.exec"] } },
  });
});

Deno.test("unknown tools, unknown contexts and bad names are refused", () => {
  assert.match(
    issues({ contexts: { "zaru-pro": { tools: ["aegis.edge.shell"] } } }).join("\n"),
    /contexts\.zaru-pro\.tools\.0: not an edge tool/,
  );
  assert.deepEqual(issues({ tiers: { Gold: "zaru-gold" } }), [
    'tiers.Gold: tier "Gold" maps to an unknown context "zaru-gold"',
  ]);
  // Names every object inherits are no contexts either.
  assert.deepEqual(issues({ tiers: { Gold: "constructor" } }), [
    'tiers.Gold: tier "Gold" maps to an unknown context "constructor"',
  ]);
  assert.match(
    issues({ contexts: { constructor: { max_concurrent: 1 } } }).join("\n"),
    /context "constructor" is new: list its tools/,
  );
  assert.match(issues({ tiers: { Pro: "Zaru_Pro" } }).join("\n"), /lowercase letters/);
  assert.match(issues({ contexts: { "zaru-pro": { bogus: 1 } } }).join("\n"), /bogus/);
  assert.match(issues({ tenants: { t1: { max_concurrent: -1 } } }).join("\n"), /tenants\.t1/);
  assert.match(issues({ users: { u: { max_timeout_secs: 0 } } }).join("\n"), /users\.u/);
  assert.match(issues({ tiers: { ["x".repeat(65)]: "zaru-pro" } }).join("\n"), /tiers/);
});

Deno.test("a consumer tier cannot map to the operator context", () => {
  const found = issues({ tiers: { Staff: OPERATOR_CONTEXT } }).join("\n");
  assert.match(found, /tiers\.Staff: a consumer tier cannot run under the operator context/);
  // And the operator context's operator-only tools are named as well.
  assert.match(found, /cannot hold operator-only tools: .*aegis\.edge\.fleet\.exec/);
});

Deno.test("two tiers differing only in case are refused: the lookup ignores case", () => {
  assert.match(
    issues({ tiers: { Pro: "zaru-pro", PRO: "zaru-free" } }).join("\n"),
    /tiers\.PRO: tier "PRO" is tier "Pro" again/,
  );
});

Deno.test("the security section reaches the controller config, and its errors name the key", () => {
  const config = parseControllerConfig(
    "security:\n  users:\n    alice:\n      max_concurrent: 2\n",
    "c.yaml",
    {},
  );
  assert.equal(config.security.users.alice.max_concurrent, 2);
  assert.equal(config.security.contexts["zaru-free"].executions_per_day, 20);
  assert.equal(parseControllerConfig("", "c.yaml", {}).security.tiers.Pro, "zaru-pro");
  assert.throws(
    () => parseControllerConfig("security:\n  tiers:\n    Pro: nope\n", "c.yaml", {}),
    /security\.tiers\.Pro/,
  );
});
