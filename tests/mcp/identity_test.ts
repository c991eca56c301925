// End to end: identity bridging at a real controller process that trusts a local identity
// provider process (realms aegis-system and zaru-consumer). Bad tokens of every kind are refused
// at the MCP endpoint (401 with a challenge naming the RFC 9728 metadata document) and on REST;
// identity headers must agree with the token; a consumer reaches executions but not the operator
// API; an operator of the realm reaches both. No token text ever reaches a log or an answer.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import {
  consumerClaims,
  forged,
  LocalIssuer,
  type MintOptions,
  operatorClaims,
  type Realm,
  unsigned,
} from "../support/local_issuer.ts";
import { connectMcp, MCP_PROTOCOLS, McpCallError } from "../support/mcp_client.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import type { JWTPayload } from "jose";

const opts = { sanitizeOps: false, sanitizeResources: false };
const METADATA_PREFIX = "/.well-known/oauth-protected-resource";
/** An answer is a small JSON error or document; more means something is wrong. */
const MAX_BODY_CHARS = 64 * 1024;

/** The controller's `auth:` lines for the issuer's two realms, one issuer per realm. */
function authYaml(issuer: LocalIssuer): string {
  const entry = (realm: Realm, kind: string) => [
    `  - issuer: "${issuer.issuer(realm)}"`,
    `    audience: "aegis-edge"`,
    `    jwks_url: "${issuer.jwksUrl(realm)}"`,
    `    algorithms: [RS256, ES256]`,
    `    kind: ${kind}`,
  ];
  return ["issuers:", ...entry("aegis-system", "operator"), ...entry("zaru-consumer", "consumer")]
    .join("\n");
}

interface Answer {
  status: number;
  wwwAuthenticate: string | null;
  body: string;
}

Deno.test(
  `[${TEST_DB_KIND}] MCP identity: bad tokens and disagreeing headers are refused on MCP and REST, consumers stay off the operator API, and no token text is ever logged or answered`,
  opts,
  async (t) => {
    const issuer = await LocalIssuer.start();
    // Another provider with the same realms at another address: an issuer nobody configured.
    const stranger = await LocalIssuer.start();
    let controller: ControllerProcess | undefined;
    let stopped = false;
    // Every token this test made, and every answer the controller gave, for the final check.
    const tokens: string[] = [];
    const answers: string[] = [];
    const keep = (token: string) => {
      tokens.push(token);
      return token;
    };
    const mint = async (realm: Realm, claims: JWTPayload, o?: MintOptions) =>
      keep(await issuer.mint(realm, claims, o));
    try {
      controller = await startControllerProcess({ auth: authYaml(issuer) });
      const endpoint = controller.endpoint;
      const mcpUrl = `${endpoint}/mcp/v1`;
      const metadataUrl = (path: string) => `${endpoint}${METADATA_PREFIX}${path}`;

      const read = async (response: Response): Promise<Answer> => {
        const body = (await response.text()).slice(0, MAX_BODY_CHARS);
        answers.push(body);
        return {
          status: response.status,
          wwwAuthenticate: response.headers.get("www-authenticate"),
          body,
        };
      };
      /** A JSON-RPC request straight to the endpoint, so the whole answer can be read. */
      const mcpPost = async (
        token?: string,
        headers: Record<string, string> = {},
        path = "/mcp/v1",
      ) =>
        await read(
          await fetch(`${endpoint}${path}`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-protocol-version": "2025-11-25",
              ...(token ? { authorization: `Bearer ${token}` } : {}),
              ...headers,
            },
            body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
          }),
        );
      const rest = async (
        path: string,
        token: string,
        init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
      ) =>
        await read(
          await controller!.api(path, {
            method: init.method ?? "GET",
            token,
            headers: init.headers,
            ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
          }),
        );
      /** The SDK client's view of a refused connection, on both protocols. */
      const sdkRefusal = async (
        token: string,
        status: number,
        headers?: Record<string, string>,
      ) => {
        for (const protocol of MCP_PROTOCOLS) {
          const error = await connectMcp(mcpUrl, { token, protocol, headers }).then(
            async (session) => {
              await session.close();
              throw new Error(`${protocol}: the connection was accepted`);
            },
            (error: unknown) => error,
          );
          assert.ok(error instanceof McpCallError, String(error));
          assert.equal(error.kind, "http", `${protocol}: ${error.message}`);
          assert.equal(error.responseStatus, status, `${protocol}: ${error.message}`);
          if (status === 401) {
            assert.match(error.wwwAuthenticate ?? "", /resource_metadata="/, protocol);
          }
        }
      };

      const userId = crypto.randomUUID();
      const goodConsumer = await mint(
        "zaru-consumer",
        consumerClaims({ userId, tier: "Pro" }),
      );
      const goodOperator = await mint(
        "aegis-system",
        operatorClaims({
          sub: "alice",
          role: "operator",
          tenant: "team-a",
          roles: ["aegis.edge.fleet.manage"],
        }),
        { alg: "ES256" },
      );

      await t.step(
        "the metadata document names this resource and the trusted issuers",
        async () => {
          for (const path of ["/mcp/v1", "/mcp/v1/sse"]) {
            const answer = await mcpPost(undefined, {}, path);
            assert.equal(answer.status, 401);
            assert.equal(
              answer.wwwAuthenticate,
              `Bearer resource_metadata="${metadataUrl(path)}"`,
            );
            const document = await (await fetch(metadataUrl(path))).json();
            assert.equal(document.resource, `${endpoint}${path}`);
            assert.deepEqual(
              [...document.authorization_servers].sort(),
              [issuer.issuer("aegis-system"), issuer.issuer("zaru-consumer")].sort(),
            );
            assert.deepEqual(document.bearer_methods_supported, ["header"]);
          }
        },
      );

      await t.step("bad tokens are refused on MCP (with a challenge) and on REST", async () => {
        const claims = consumerClaims({ userId: crypto.randomUUID(), tier: "Pro" });
        // What is wrong, the answer's status, and what its message must say.
        const bad: [string, string, number, RegExp][] = [
          [
            "forged (payload edited)",
            forged(goodConsumer, { zaru_tier: "Enterprise" }),
            401,
            /user token signature is invalid/,
          ],
          [
            "forged operator (escalated)",
            forged(goodOperator, { aegis_role: "admin" }),
            401,
            /operator token signature is invalid/,
          ],
          [
            "unsigned (alg none)",
            unsigned(goodConsumer),
            401,
            /signed with an algorithm this controller does not accept/,
          ],
          [
            "signed by a key not in the JWKS",
            await issuer.selfSigned("zaru-consumer", claims),
            401,
            /user token signature is invalid/,
          ],
          [
            "wrong audience",
            await issuer.mint("zaru-consumer", claims, { audience: "another-service" }),
            401,
            /wrong audience/,
          ],
          [
            "an issuer not configured",
            await stranger.mint("zaru-consumer", claims),
            401,
            /issuer is not trusted here/,
          ],
          [
            "expired",
            await issuer.mint("zaru-consumer", claims, { ttlSecs: -600 }),
            401,
            /user token expired at /,
          ],
          [
            "a tenant that is not u-{uuid}",
            await issuer.mint("zaru-consumer", { ...claims, tenant_id: "team-a" }),
            401,
            /tenant_id claim is not a per-user tenant/,
          ],
          [
            "an unknown tier",
            await issuer.mint("zaru-consumer", { ...claims, zaru_tier: "Platinum" }),
            403,
            /tier "Platinum" has no security context/,
          ],
        ];
        const fromConsumerRealm = new Set([
          "forged (payload edited)",
          "unsigned (alg none)",
          "signed by a key not in the JWKS",
          "wrong audience",
          "expired",
          "a tenant that is not u-{uuid}",
        ]);
        for (const [what, token, status, reason] of bad) {
          keep(token);
          const mcp = await mcpPost(token);
          assert.equal(mcp.status, status, `MCP, ${what}: ${mcp.body}`);
          const challenge = mcp.wwwAuthenticate ?? "";
          assert.match(
            challenge,
            status === 401 ? /^Bearer error="invalid_token"/ : /^Bearer error="insufficient_scope"/,
            what,
          );
          assert.ok(
            challenge.endsWith(`resource_metadata="${metadataUrl("/mcp/v1")}"`),
            `${what}: ${challenge}`,
          );
          assert.equal(
            JSON.parse(mcp.body).error.code,
            status === 401 ? "UNAUTHENTICATED" : "FORBIDDEN",
            what,
          );
          assert.match(JSON.parse(mcp.body).error.message, reason, what);
          if (status === 401 && fromConsumerRealm.has(what)) {
            // A consumer's client gets tokens from its provider, not from AEGIS_TOKEN.
            assert.match(JSON.parse(mcp.body).error.hint, /identity provider/, what);
          }
          await sdkRefusal(token, status);

          const answer = await rest("/v1/executions", token);
          assert.equal(answer.status, status, `REST, ${what}: ${answer.body}`);
          assert.equal(
            JSON.parse(answer.body).error.code,
            status === 401 ? "UNAUTHENTICATED" : "FORBIDDEN",
            what,
          );
          assert.match(JSON.parse(answer.body).error.message, reason, what);
        }
      });

      await t.step("identity headers must agree with the token", async () => {
        const disagreeing: Record<string, string>[] = [
          { "X-Zaru-User-ID": crypto.randomUUID() },
          { "X-Zaru-Tier": "Enterprise" },
          { "X-Zaru-User-ID": userId, "X-Zaru-Tier": "Free" },
        ];
        for (const headers of disagreeing) {
          const what = JSON.stringify(headers);
          const mcp = await mcpPost(goodConsumer, headers);
          assert.equal(mcp.status, 401, `MCP ${what}: ${mcp.body}`);
          assert.match(
            JSON.parse(mcp.body).error.message,
            /X-Zaru-(User-ID|Tier) header disagrees/,
          );
          await sdkRefusal(goodConsumer, 401, headers);
          const answer = await rest("/v1/executions", goodConsumer, { headers });
          assert.equal(answer.status, 401, `REST ${what}: ${answer.body}`);
        }
        // The same token with headers that agree (a tier is matched without case) works.
        const agreeing = { "X-Zaru-User-ID": userId, "X-Zaru-Tier": "pro" };
        for (const protocol of MCP_PROTOCOLS) {
          const session = await connectMcp(mcpUrl, {
            token: goodConsumer,
            protocol,
            headers: agreeing,
          });
          try {
            const names = (await session.listTools()).map((tool) => tool.name);
            assert.ok(names.includes("aegis.execution.start"), names.join(", "));
          } finally {
            await session.close();
          }
        }
        const answer = await rest("/v1/executions", goodConsumer, { headers: agreeing });
        assert.equal(answer.status, 200, answer.body);
      });

      await t.step("a consumer token reaches executions but not the operator API", async () => {
        const hosts = await rest("/v1/edge/hosts", goodConsumer);
        assert.equal(hosts.status, 403, hosts.body);
        assert.equal(JSON.parse(hosts.body).error.code, "FORBIDDEN");
        const enroll = await rest("/v1/edge/enrollment-tokens", goodConsumer, {
          method: "POST",
          body: { name: "sneaky" },
        });
        assert.equal(enroll.status, 403, enroll.body);

        const started = await rest("/v1/executions", goodConsumer, {
          method: "POST",
          body: { title: "a consumer's task" },
        });
        assert.equal(started.status, 201, started.body);
        const execution = JSON.parse(started.body).execution;
        assert.equal(execution.tenant_id, `u-${userId}`);
        assert.equal(execution.context, "zaru-pro");
        assert.equal(execution.identity_kind, "consumer");
        assert.equal(execution.subject, userId);
        const listed = await rest("/v1/executions", goodConsumer);
        assert.equal(listed.status, 200, listed.body);
        assert.deepEqual(
          JSON.parse(listed.body).executions.map((e: { id: string }) => e.id),
          [execution.id],
        );
        // Another tenant's executions are not the consumer's to read.
        const foreign = await rest("/v1/executions?tenant_id=team-a", goodConsumer);
        assert.equal(foreign.status, 403, foreign.body);
      });

      await t.step("an operator token from the realm works on MCP and REST", async () => {
        for (const protocol of MCP_PROTOCOLS) {
          const session = await connectMcp(mcpUrl, { token: goodOperator, protocol });
          try {
            const names = (await session.listTools()).map((tool) => tool.name);
            assert.ok(names.includes("aegis.edge.fleet.exec"), names.join(", "));
            const listed = (await session.callTool("aegis.edge.hosts.list", {}))
              .structuredContent as { tenant_id: string; total: number };
            assert.deepEqual(listed, { tenant_id: "team-a", total: 0, hosts: [] });
          } finally {
            await session.close();
          }
        }
        const hosts = await rest("/v1/edge/hosts", goodOperator);
        assert.equal(hosts.status, 200, hosts.body);
        const started = await rest("/v1/executions", goodOperator, {
          method: "POST",
          body: { title: "an operator's task" },
        });
        assert.equal(started.status, 201, started.body);
        const execution = JSON.parse(started.body).execution;
        assert.equal(execution.context, "aegis-system-operator");
        assert.equal(execution.identity_kind, "operator");
        assert.equal(execution.issuer, issuer.issuer("aegis-system"));
      });

      await t.step("no token text is in the controller's logs or in any answer", async () => {
        await controller!.stop();
        stopped = true;
        const logs = controller!.process.stdout + controller!.process.stderr;
        assert.ok(logs.includes('"port":'), "the controller's output was captured");
        assert.ok(tokens.length >= 11, `${tokens.length} tokens checked`);
        assert.ok(answers.length >= 30, `${answers.length} answers checked`);
        for (const token of tokens) {
          const signature = token.split(".")[2] ?? "";
          const secrets = signature.length >= 16 ? [token, signature] : [token];
          for (const secret of secrets) {
            assert.ok(!logs.includes(secret), `a token's text is in the controller's logs`);
            for (const answer of answers) {
              assert.ok(!answer.includes(secret), `a token's text is in an answer: ${answer}`);
            }
          }
        }
      });
    } finally {
      if (!stopped) await controller?.stop();
      await stranger.stop();
      await issuer.stop();
    }
  },
);
