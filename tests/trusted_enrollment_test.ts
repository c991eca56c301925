// Token-free (trusted) enrollment and hostname-bound tokens, against a real controller process
// and the real `aegis` CLI. The host's hostname is this machine's; its source address is
// 127.0.0.1, so networks around it decide.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { challengeBytes } from "../shared/crypto/signed_bytes.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { createNodeClient } from "../agent/client/node_client.ts";
import { fromConnectError } from "../shared/rpc_errors.ts";
import { AegisError } from "../shared/errors.ts";
import { startControllerProcess } from "./support/controller.ts";
import { makeHost } from "./support/host.ts";
import { AGENT_MAIN, CONTROLLER_MAIN, runDeno } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };
const HOST = hostname();

/** AttestNode + ChallengeNode with `trusted: true`, as `aegis edge enroll --trusted` sends them. */
async function trustedEnroll(endpoint: string, name: string, forwardedFor?: string) {
  const client = await createNodeClient(parseEndpoint(endpoint));
  const headers = forwardedFor ? { "x-forwarded-for": forwardedFor } : undefined;
  try {
    const key = NodePrivateKey.generate();
    const challenge = await client.attestNode({
      role: NodeRole.EDGE,
      publicKey: key.publicKey.bytes,
      hostname: name,
      os: "linux",
      arch: "x86_64",
      clientTime: timestampFromDate(new Date()),
    }, { headers });
    return await client.challengeNode({
      challengeId: challenge.challengeId,
      signature: key.sign(
        challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
      ),
      proof: { case: "trusted", value: true },
    }, { headers });
  } catch (error) {
    throw fromConnectError(error);
  } finally {
    client.close();
  }
}

Deno.test(
  `[${TEST_DB_KIND}] trusted enrollment: hostname + network admit a host tokenless; a wrong network or name is refused`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      edge: "attest_rate_limit_per_min: 1000",
      yaml: [
        "bootstrap:",
        "  trusted_enrollment:",
        '    - pattern: "*.nowhere.invalid"',
        '      cidrs: ["127.0.0.0/8", "::1/128"]',
        "      tenant: team-t",
      ].join("\n"),
    });
    const host = await makeHost();
    const operator = {
      AEGIS_ENDPOINT: controller.endpoint,
      AEGIS_TOKEN: await controller.operatorToken("team-a"),
      HOME: host.home,
    };
    const aegis = (args: string[]) => runDeno(AGENT_MAIN, args, operator);
    const enroll = () =>
      host.aegis([
        "edge",
        "enroll",
        "--trusted",
        "--endpoint",
        controller.endpoint,
        "--non-interactive",
        "--force",
        "--no-service",
        "--local-tools",
        "none",
      ]);
    try {
      // No rule names this host: the hostname check fails, and says only that.
      const unnamed = await enroll();
      assert.equal(unnamed.code, 65, unnamed.stderr);
      assert.match(
        unnamed.stderr,
        new RegExp(`✖ the hostname "${HOST}" matches no trusted-enrollment pattern`),
      );
      assert.doesNotMatch(unnamed.stderr, /nowhere|team-t|127\.0\.0\.0/);
      await controller.process.waitFor(
        /trusted enrollment from 127\.0\.0\.1 refused \(hostname\)/,
        5000,
      );

      // A rule names it, but for another network: the address check fails.
      const wrongNet = await aegis(["edge", "approved", "add", HOST, "--cidr", "10.0.0.0/8"]);
      assert.equal(wrongNet.code, 0, wrongNet.stderr);
      const refused = await enroll();
      assert.equal(refused.code, 65);
      assert.match(refused.stderr, /✖ the source address 127\.0\.0\.1 is not in a network trusted/);
      assert.match(refused.stderr, /Ask an operator for an enrollment token/);
      assert.doesNotMatch(refused.stderr, /10\.0\.0\.0/);
      // Without trusted proxies a forwarding header is nobody's word: the socket address counts.
      await assert.rejects(
        trustedEnroll(controller.endpoint, HOST, "10.1.2.3"),
        (e) =>
          e instanceof AegisError && e.code === "ENROLL_NOT_TRUSTED" &&
          e.message.includes("source address 127.0.0.1 "),
      );

      // The right network, approved at run time: effective at the next enrollment.
      const added = await aegis([
        "edge",
        "approved",
        "add",
        HOST,
        "--cidr",
        "127.0.0.0/8",
        "--cidr",
        "::1/128",
        "--output",
        "json",
      ]);
      assert.equal(added.code, 0, added.stderr);
      const pattern = JSON.parse(added.stdout) as { id: string; tenant_id: string };
      assert.equal(pattern.tenant_id, "team-a");
      const listed = await aegis(["edge", "approved", "list", "--output", "json"]);
      assert.deepEqual(
        (JSON.parse(listed.stdout) as { cidrs: string[] }[]).map((p) => p.cidrs),
        [["10.0.0.0/8"], ["127.0.0.0/8", "::1/128"]],
      );

      const enrolled = await enroll();
      assert.equal(enrolled.code, 0, enrolled.stderr);
      assert.match(enrolled.stdout, /Attested as node n-[0-9a-f]+/);
      assert.match(enrolled.stdout, /Bound to tenant team-a/);
      const nodeId = enrolled.stdout.match(/(n-[0-9a-f]+)/)![1];
      // Audited: the controller's log names the rule, the host lists in the tenant.
      await controller.process.waitFor(
        new RegExp(
          `node ${nodeId} enrolled in tenant team-a without a token \\(trusted enrollment, approved pattern ${pattern.id}, from 127\\.0\\.0\\.1\\)`,
        ),
        5000,
      );
      const hosts = await aegis(["edge", "hosts", "list", "--output", "json"]);
      assert.ok(
        (JSON.parse(hosts.stdout) as { node_id: string }[]).some((h) => h.node_id === nodeId),
      );

      // Removed: refused again at once.
      const removed = await aegis(["edge", "approved", "remove", pattern.id]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal((await enroll()).code, 65);
      const readonly = await runDeno(AGENT_MAIN, [
        "edge",
        "approved",
        "add",
        HOST,
        "--cidr",
        "127.0.0.1",
      ], {
        ...operator,
        AEGIS_TOKEN: await controller.operatorToken("team-a", "readonly"),
      });
      assert.equal(readonly.code, 77);
      assert.match(readonly.stderr, /cannot approve enrollment patterns/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a token bound to a hostname pattern refuses other hosts and stays unspent`,
  opts,
  async () => {
    const controller = await startControllerProcess({ edge: "attest_rate_limit_per_min: 1000" });
    const host = await makeHost();
    const env = {
      AEGIS_ENDPOINT: controller.endpoint,
      AEGIS_TOKEN: await controller.operatorToken("team-a"),
      HOME: host.home,
    };
    try {
      const created = await runDeno(AGENT_MAIN, [
        "edge",
        "token",
        "create",
        "--hostname-pattern",
        "*.web.example.com",
        "--name",
        "web-1",
      ], env);
      assert.equal(created.code, 0, created.stderr);
      const token = created.stdout.split("\n")[0];
      assert.match(created.stdout, /hostnames {2}\*\.web\.example\.com only/);
      // The install one-liners use the bootstrap URL (here derived from the endpoint).
      assert.ok(created.stdout.includes(
        `linux    curl -fsSL '${controller.endpoint}/install.sh' | AEGIS_TOKEN='${token}' sh`,
      ));
      assert.ok(created.stdout.includes(
        `windows  & ([scriptblock]::Create((iwr -useb '${controller.endpoint}/install.ps1'))) -Token '${token}'`,
      ));

      const refused = await host.aegis([
        "edge",
        "enroll",
        token,
        "--non-interactive",
        "--no-service",
      ]);
      assert.equal(refused.code, 65);
      assert.match(
        refused.stderr,
        new RegExp(
          `✖ this enrollment token is bound to hostnames matching "\\*\\.web\\.example\\.com"; this host attested as "${HOST}"`,
        ),
      );
      assert.match(refused.stderr, /The token is still valid/);

      // Not spent: a host that does match redeems the very same token.
      const endpoint = parseEndpoint(controller.endpoint);
      const client = await createNodeClient(endpoint);
      try {
        const key = NodePrivateKey.generate();
        const challenge = await client.attestNode({
          role: NodeRole.EDGE,
          publicKey: key.publicKey.bytes,
          hostname: "a.web.example.com",
          os: "linux",
          arch: "x86_64",
          clientTime: timestampFromDate(new Date()),
        });
        const answer = await client.challengeNode({
          challengeId: challenge.challengeId,
          signature: key.sign(
            challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
          ),
          proof: { case: "bootstrapProof", value: token },
        });
        assert.equal(answer.tenantId, "team-a");
        assert.equal(answer.nodeName, "web-1");
      } finally {
        client.close();
      }

      // REST: the pattern is checked at issue time and echoed; the response carries install.
      const bad = await controller.api("/v1/edge/enrollment-tokens", {
        method: "POST",
        token: env.AEGIS_TOKEN,
        body: JSON.stringify({ hostname_pattern: "a b" }),
      });
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).error.message, /hostname_pattern: hostname pattern "a b"/);
      const rest = await controller.issueEnrollment("team-a", {
        hostname_pattern: "DB-*.Example.com",
      });
      const body = rest as unknown as {
        hostname_pattern: string;
        install: { linux: string; macos: string; windows: string };
      };
      assert.equal(body.hostname_pattern, "db-*.example.com");
      assert.equal(body.install.macos, body.install.linux);
      assert.match(
        body.install.linux,
        /^curl -fsSL 'http:\/\/127\.0\.0\.1:\d+\/install\.sh' \| AEGIS_TOKEN='eyJ/,
      );
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  "a malformed trusted_enrollment CIDR stops the controller at start-up",
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "aegis-ctl-" });
    try {
      await Deno.writeTextFile(
        `${dir}/aegis-config.yaml`,
        [
          "cluster:",
          "  bind_address: 127.0.0.1",
          "bootstrap:",
          "  trusted_enrollment:",
          '    - { pattern: "*.web.example.com", cidrs: ["10.0.0.1/8"], tenant: t }',
        ].join("\n") + "\n",
      );
      const out = await runDeno(CONTROLLER_MAIN, [
        "run",
        "--config",
        `${dir}/aegis-config.yaml`,
        "--data-dir",
        dir,
        "--port",
        "0",
      ], { HOME: dir });
      assert.equal(out.code, 78, out.stderr);
      assert.match(
        out.stderr,
        /bootstrap\.trusted_enrollment\[0\]\.cidrs\[0\]: "10\.0\.0\.1\/8" has host bits set/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] trusted enrollment checks the address a trusted proxy names`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      edge: "attest_rate_limit_per_min: 1000",
      trustedProxies: ["127.0.0.1/32"],
      yaml: [
        "bootstrap:",
        "  trusted_enrollment:",
        '    - { pattern: "*.lan.example", cidrs: ["198.51.100.0/24"], tenant: team-p }',
      ].join("\n"),
    });
    try {
      const admitted = await trustedEnroll(
        controller.endpoint,
        "box-1.lan.example",
        "198.51.100.7",
      );
      assert.equal(admitted.tenantId, "team-p");
      assert.equal(admitted.nodeName, "box-1.lan.example");
      await assert.rejects(
        trustedEnroll(controller.endpoint, "box-2.lan.example", "203.0.113.9"),
        (e) =>
          e instanceof AegisError && e.code === "ENROLL_NOT_TRUSTED" &&
          e.details.failed_check === "source_address" && e.message.includes("203.0.113.9"),
      );
      await assert.rejects(
        trustedEnroll(controller.endpoint, "box-3.elsewhere.example", "198.51.100.7"),
        (e) => e instanceof AegisError && e.details.failed_check === "hostname",
      );
    } finally {
      await controller.stop();
    }
  },
);
