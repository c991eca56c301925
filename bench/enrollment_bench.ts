// Enrollment throughput, daemon idle memory, and controller memory per connected stream, each
// against a real controller process. Prints numbers; asserts nothing about them.
//
//   deno task bench                      # PGlite
//   AEGIS_TEST_PG_DSN=postgres://… deno task bench   # a real PostgreSQL (fresh database)
//   deno task bench --streams 1000 --enrollments 300
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { enrollOne, FLEET_FROM_ONE_ADDRESS, issueTokens, pool, rssKiB } from "./support.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { parseEdgeConfig } from "../shared/config/edge_config.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { EdgeConnection } from "../agent/daemon/connection.ts";
import { startControllerProcess } from "../tests/support/controller.ts";
import { makeHost } from "../tests/support/host.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    enrollments: { type: "string", default: "200" },
    concurrency: { type: "string", default: "16" },
    streams: { type: "string", default: "1000" },
  },
});

const enrollments = Number(values.enrollments);
const concurrency = Number(values.concurrency);
const streams = Number(values.streams);
console.log(
  `# enrollment bench on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores)`,
);

const controller = await startControllerProcess({
  edge: "attest_rate_limit_per_min: 1000000",
  yaml: FLEET_FROM_ONE_ADDRESS,
});
try {
  let endpoint = parseEndpoint(controller.endpoint);
  const client = await createNodeClient(endpoint);

  // 1. Enrollments per second: AttestNode + ChallengeNode, each with its own token and key.
  const tokens = await issueTokens(controller, enrollments);
  const keys = tokens.map(() => NodePrivateKey.generate());
  const started = performance.now();
  await pool(tokens.map((t, i) => [t, keys[i]] as const), concurrency, async ([token, key]) => {
    await enrollOne(client, token, key);
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `enrollments: ${enrollments} in ${seconds.toFixed(2)}s = ${
      (enrollments / seconds).toFixed(1)
    }/s (concurrency ${concurrency})`,
  );

  // 2. Idle RSS of a real daemon process.
  const host = await makeHost();
  const { token } = await controller.issueEnrollment("bench");
  const enrolled = await host.aegis(["edge", "enroll", token, "--non-interactive", "--no-service"]);
  if (enrolled.code !== 0) throw new Error(enrolled.stderr);
  const daemon = host.startDaemon();
  await daemon.waitFor(/stream connected/, 30_000);
  await new Promise((r) => setTimeout(r, 5000));
  console.log(`daemon idle RSS: ${(rssKiB(daemon.child.pid) / 1024).toFixed(1)} MiB`);
  await host.cleanup();

  // 3. Controller RSS per connected stream: enroll N nodes, then hold N streams open.
  const streamTokens = await issueTokens(controller, streams);
  const nodes: Awaited<ReturnType<typeof enrollOne>>[] = [];
  await pool(streamTokens, concurrency, async (t) => void nodes.push(await enrollOne(client, t)));
  const config = parseEdgeConfig("edge:\n  heartbeat_interval_secs: 30\n");
  // A fresh controller process, so the baseline is not inflated by the enrollment work above.
  await controller.restart();
  await new Promise((r) => setTimeout(r, 3000));
  const before = rssKiB(controller.process.child.pid);
  endpoint = parseEndpoint(`http://127.0.0.1:${controller.port}`);
  const connections: EdgeConnection[] = [];
  const clients: NodeClient[] = [];
  const openStarted = performance.now();
  await pool(nodes, 32, async (node) => {
    const own = await createNodeClient(endpoint);
    clients.push(own);
    connections.push(
      await EdgeConnection.open(
        own,
        endpoint,
        { nodeId: node.nodeId, key: node.key, token: node.token },
        config,
        hostname(),
      ),
    );
  });
  const openSecs = (performance.now() - openStarted) / 1000;
  await new Promise((r) => setTimeout(r, 5000));
  const after = rssKiB(controller.process.child.pid);
  console.log(`streams: ${connections.length} opened in ${openSecs.toFixed(1)}s`);
  console.log(
    `controller RSS: ${(before / 1024).toFixed(1)} MiB before, ${
      (after / 1024).toFixed(1)
    } MiB with ${connections.length} streams` +
      ` = ${((after - before) / connections.length).toFixed(1)} KiB per stream`,
  );
  for (const c of connections) c.close();
  for (const c of clients) c.close();
  client.close();
} finally {
  await controller.stop();
}
Deno.exit(0);
