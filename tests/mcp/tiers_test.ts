// End to end: security contexts and tiers as an MCP client meets them. A real controller process
// trusts a local identity provider process with two realms (aegis-system for operators,
// zaru-consumer for consumer users); each caller's tools/list must show exactly what its context
// allows it, and the context's limits (executions per minute, the longest timeout, the ceiling
// rule for children) are enforced on real calls, a real host's included.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { type EnrolledNewHost, enrollNewHost } from "../support/host.ts";
import {
  consumerClaims,
  type ConsumerTier,
  LocalIssuer,
  operatorClaims,
  type OperatorRole,
} from "../support/local_issuer.ts";
import { connectMcp, MCP_PROTOCOLS, McpCallError, type McpSession } from "../support/mcp_client.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import type { Background } from "../support/processes.ts";
import { DEFAULT_CONTEXTS, DEFAULT_TIERS } from "../../controller/security_config.ts";
import {
  EDGE_TOOL_NAMES,
  EDGE_TOOLS,
  type EdgeToolName,
  type EdgeToolTraits,
} from "../../controller/app/edge_tools.ts";
import { EDGE_ROLES, OPERATOR_CONTEXT } from "../../controller/app/identity.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TIERS: ConsumerTier[] = ["Free", "Pro", "Business", "Enterprise"];
const ENROLLMENT_TOOL = "aegis.edge.enrollment_token.issue";
const OPERATOR_ONLY = EDGE_TOOL_NAMES.filter((name) => EDGE_TOOLS[name].operatorOnly);
const FLEET_TOOLS = EDGE_TOOL_NAMES.filter((name) => name.startsWith("aegis.edge.fleet."));

/** The controller's `auth:` lines for the issuer's two realms, one issuer per realm. */
function authYaml(issuer: LocalIssuer): string {
  const entry = (realm: "aegis-system" | "zaru-consumer", kind: string) => [
    `  - issuer: "${issuer.issuer(realm)}"`,
    `    audience: "aegis-edge"`,
    `    jwks_url: "${issuer.jwksUrl(realm)}"`,
    `    algorithms: [RS256, ES256]`,
    `    kind: ${kind}`,
  ];
  return ["issuers:", ...entry("aegis-system", "operator"), ...entry("zaru-consumer", "consumer")]
    .join("\n");
}

/**
 * What a context should show an identity, written out from the seed's definitions and the
 * catalogue's traits (independently of SecurityContexts.resolve, which this checks).
 */
function expectedTools(
  context: string,
  who: { kind: "operator" | "consumer"; role: OperatorRole; roles: string[] },
): string[] {
  return DEFAULT_CONTEXTS[context].tools.filter((name) => {
    const traits: EdgeToolTraits = EDGE_TOOLS[name];
    if (traits.operatorOnly && who.kind !== "operator") return false;
    if (traits.writes && who.role === "readonly") return false;
    return traits.role === undefined || who.roles.includes(traits.role);
  }).sort();
}

async function toolNames(mcp: McpSession): Promise<string[]> {
  return (await mcp.listTools()).map((tool) => tool.name).sort();
}

interface ToolFailure {
  code: string;
  message: string;
  details?: Record<string, string>;
  text: string;
}

/** The AegisError a tool answered with (the call must have failed as a tool error). */
async function toolError(
  mcp: McpSession,
  name: string,
  args: Record<string, unknown>,
): Promise<ToolFailure> {
  const result = await mcp.callTool(name, args, { allowToolError: true });
  assert.equal(result.isError, true, `${name} should fail: ${JSON.stringify(result)}`);
  const error = (result.structuredContent as { error: Omit<ToolFailure, "text"> }).error;
  const text = result.content.flatMap((c) => c.type === "text" ? [c.text] : []).join("\n");
  return { ...error, text };
}

/** Whether calling `name` was refused, whatever form the SDK gives the refusal. */
async function refusedCall(
  mcp: McpSession,
  name: string,
  args: Record<string, unknown>,
): Promise<string> {
  try {
    const result = await mcp.callTool(name, args, { allowToolError: true });
    assert.equal(result.isError, true, `${name} ran: ${JSON.stringify(result)}`);
    return result.content.flatMap((c) => c.type === "text" ? [c.text] : []).join("\n");
  } catch (error) {
    if (!(error instanceof McpCallError) || error.kind !== "jsonrpc") throw error;
    return error.message;
  }
}

Deno.test(
  `[${TEST_DB_KIND}] MCP tiers: each caller's tools follow its security context; limits, timeouts and the ceiling rule are enforced`,
  opts,
  async (t) => {
    const issuer = await LocalIssuer.start();
    let controller: ControllerProcess | undefined;
    let enrolled: EnrolledNewHost | undefined;
    let daemon: Background | undefined;
    try {
      controller = await startControllerProcess({ auth: authYaml(issuer) });
      const url = `${controller.endpoint}/mcp/v1`;
      const consumer = (tier: ConsumerTier, roles: string[] = [], userId = crypto.randomUUID()) =>
        issuer.mint("zaru-consumer", consumerClaims({ userId, tier, roles }));
      const operator = (role: OperatorRole, roles: string[]) =>
        issuer.mint(
          "aegis-system",
          operatorClaims({ sub: `op-${crypto.randomUUID()}`, role, tenant: "team-a", roles }),
        );
      const withSession = async <T>(
        token: string,
        run: (mcp: McpSession) => Promise<T>,
        protocol: typeof MCP_PROTOCOLS[number] = "2026-07-28",
      ): Promise<T> => {
        const mcp = await connectMcp(url, { token, protocol });
        try {
          return await run(mcp);
        } finally {
          await mcp.close();
        }
      };

      await t.step(
        "each consumer tier lists exactly its context's tools, on both protocols",
        async () => {
          for (const protocol of MCP_PROTOCOLS) {
            for (const tier of TIERS) {
              const names = await withSession(await consumer(tier), toolNames, protocol);
              const expected = expectedTools(DEFAULT_TIERS[tier], {
                kind: "consumer",
                role: "operator",
                roles: [],
              });
              assert.deepEqual(names, expected, `${protocol} ${tier}`);
              assert.ok(names.length > 0, `${tier} lists tools`);
              for (const tool of OPERATOR_ONLY) {
                assert.ok(!names.includes(tool), `${tier} must not see the operator-only ${tool}`);
              }
              assert.ok(!names.includes(ENROLLMENT_TOOL), `${tier} without aegis.edge.enroll`);
            }
          }
        },
      );

      await t.step(
        "the enrollment tool: never for Free, for Pro only with aegis.edge.enroll",
        async () => {
          const free = await withSession(await consumer("Free", [EDGE_ROLES.enroll]), toolNames);
          assert.deepEqual(
            free,
            expectedTools("zaru-free", { kind: "consumer", role: "operator", roles: [] }),
          );
          assert.ok(
            !free.includes(ENROLLMENT_TOOL),
            "Free lacks the enrollment tool even with the role",
          );
          const pro = await withSession(await consumer("Pro", [EDGE_ROLES.enroll]), toolNames);
          assert.deepEqual(
            pro,
            expectedTools("zaru-pro", {
              kind: "consumer",
              role: "operator",
              roles: [EDGE_ROLES.enroll],
            }),
          );
          assert.ok(pro.includes(ENROLLMENT_TOOL), "Pro with aegis.edge.enroll has it");
          const plainPro = await withSession(await consumer("Pro"), toolNames);
          assert.ok(!plainPro.includes(ENROLLMENT_TOOL), "Pro without the role lacks it");
        },
      );

      await t.step(
        "operators: fleet tools only with aegis.edge.fleet.manage; readonly sees no writing tool",
        async () => {
          const manager = await withSession(
            await operator("operator", [EDGE_ROLES.fleetManage]),
            toolNames,
          );
          assert.deepEqual(
            manager,
            expectedTools(OPERATOR_CONTEXT, {
              kind: "operator",
              role: "operator",
              roles: [EDGE_ROLES.fleetManage],
            }),
          );
          for (const tool of FLEET_TOOLS) {
            assert.ok(manager.includes(tool), `the manager sees ${tool}`);
          }

          const plainToken = await operator("operator", []);
          await withSession(plainToken, async (mcp) => {
            const names = await toolNames(mcp);
            assert.deepEqual(
              names,
              expectedTools(OPERATOR_CONTEXT, { kind: "operator", role: "operator", roles: [] }),
            );
            for (const tool of FLEET_TOOLS) assert.ok(!names.includes(tool), `no ${tool}`);
            // A guessed name is refused, not run: the server holds no such tool for this caller.
            const refusal = await refusedCall(mcp, "aegis.edge.fleet.exec", {
              target: "all",
              argv: ["true"],
            });
            assert.match(refusal, /aegis\.edge\.fleet\.exec/);
          });

          const readonly = await withSession(
            await operator("readonly", [EDGE_ROLES.fleetManage, EDGE_ROLES.enroll]),
            async (mcp) => await mcp.listTools(),
          );
          const readonlyNames = readonly.map((tool) => tool.name).sort();
          assert.deepEqual(
            readonlyNames,
            expectedTools(OPERATOR_CONTEXT, {
              kind: "operator",
              role: "readonly",
              roles: [EDGE_ROLES.fleetManage, EDGE_ROLES.enroll],
            }),
          );
          for (const tool of readonly) {
            assert.equal(
              EDGE_TOOLS[tool.name as EdgeToolName].writes,
              false,
              `${tool.name} writes`,
            );
            assert.equal(tool.annotations?.readOnlyHint, true, `${tool.name} is marked read-only`);
          }
        },
      );

      await t.step(
        "the ceiling rule: a child never asks for a broader context than its parent",
        async () => {
          await withSession(await consumer("Free"), async (mcp) => {
            const root = (await mcp.callTool("aegis.execution.start", { title: "free task" }))
              .structuredContent as { execution: { id: string; context: string } };
            assert.equal(root.execution.context, "zaru-free");
            const refused = await toolError(mcp, "aegis.execution.start", {
              title: "escalate",
              parent_id: root.execution.id,
              context: "zaru-pro",
            });
            assert.equal(refused.code, "CONTEXT_CEILING", refused.message);
            assert.match(refused.message, /zaru-pro.*broader.*zaru-free/);
          });
          await withSession(
            await operator("operator", [EDGE_ROLES.fleetManage, EDGE_ROLES.enroll]),
            async (mcp) => {
              const narrowed = (await mcp.callTool("aegis.execution.start", {
                title: "on behalf of a free user",
                context: "zaru-free",
              })).structuredContent as { execution: { id: string; context: string } };
              assert.equal(narrowed.execution.context, "zaru-free");
              const refused = await toolError(mcp, "aegis.execution.start", {
                title: "escalate",
                parent_id: narrowed.execution.id,
                context: OPERATOR_CONTEXT,
              });
              assert.equal(refused.code, "CONTEXT_CEILING", refused.message);
            },
          );
        },
      );

      await t.step("a timeout above the tier's maximum is refused", async () => {
        const freeMax = DEFAULT_CONTEXTS["zaru-free"].max_timeout_secs;
        const proMax = DEFAULT_CONTEXTS["zaru-pro"].max_timeout_secs;
        await withSession(await consumer("Pro"), async (mcp) => {
          const over = await toolError(mcp, "aegis.edge.command.run", {
            node_id: "n-0000",
            argv: ["true"],
            timeout_secs: proMax + 1,
          });
          assert.equal(over.code, "INVALID_ARGUMENT", over.message);
          assert.match(over.message, new RegExp(`${proMax}s .*zaru-pro`));
          // Free's maximum is no limit for Pro: the call gets past the timeout to the host lookup.
          const fine = await toolError(mcp, "aegis.edge.command.run", {
            node_id: "n-0000",
            argv: ["true"],
            timeout_secs: freeMax + 1,
          });
          assert.equal(fine.code, "NOT_FOUND", fine.message);
        });
      });

      await t.step(
        "Free on its own connected host: a timeout above 5 min and a 4th execution in a minute are refused",
        async () => {
          const userId = crypto.randomUUID();
          enrolled = await enrollNewHost(controller!, { tenant: `u-${userId}` });
          daemon = enrolled.host.startDaemon();
          await daemon.waitFor(/stream connected/, 30_000);
          const nodeId = enrolled.nodeId;
          const freeMax = DEFAULT_CONTEXTS["zaru-free"].max_timeout_secs;
          const perMinute = DEFAULT_CONTEXTS["zaru-free"].executions_per_minute!;
          await withSession(await consumer("Free", [], userId), async (mcp) => {
            const hosts = (await mcp.callTool("aegis.edge.hosts.list", {})).structuredContent as {
              tenant_id: string;
              hosts: { node_id: string; status: string }[];
            };
            assert.equal(hosts.tenant_id, `u-${userId}`);
            assert.deepEqual(hosts.hosts.map((h) => [h.node_id, h.status]), [[
              nodeId,
              "Connected",
            ]]);

            const tooLong = await toolError(mcp, "aegis.edge.command.run", {
              node_id: nodeId,
              argv: ["true"],
              timeout_secs: freeMax + 1,
            });
            assert.equal(tooLong.code, "INVALID_ARGUMENT", tooLong.message);
            assert.match(tooLong.message, new RegExp(`${freeMax}s .*zaru-free`));

            for (let i = 1; i <= perMinute; i++) {
              const ran = (await mcp.callTool("aegis.edge.command.run", {
                node_id: nodeId,
                argv: ["echo", `run ${i}`],
                timeout_secs: freeMax,
              })).structuredContent as { exit_code: number; stdout: string };
              assert.equal(ran.exit_code, 0);
              assert.equal(ran.stdout, `run ${i}\n`);
            }
            const refused = await toolError(mcp, "aegis.edge.command.run", {
              node_id: nodeId,
              argv: ["echo", "one too many"],
            });
            assert.equal(refused.code, "QUOTA_EXCEEDED", refused.message);
            const retry = Number(refused.details?.retry_after_secs);
            assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `retry after ${retry}`);
            assert.match(refused.message, new RegExp(`${perMinute} execution\\(s\\) per minute`));
            assert.match(refused.text, new RegExp(`retry (after|in) ${retry} s`));
            // The other kind of counted work is refused as well: the minute is used up.
            const task = await toolError(mcp, "aegis.execution.start", { title: "a fifth" });
            assert.equal(task.code, "QUOTA_EXCEEDED", task.message);
          });
        },
      );
    } finally {
      await daemon?.stop();
      await enrolled?.host.cleanup();
      await controller?.stop();
      await issuer.stop();
    }
  },
);
