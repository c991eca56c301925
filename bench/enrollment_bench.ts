// Enrollment throughput, daemon idle memory, and controller memory per connected stream, each
// against a real controller process. Prints numbers; asserts nothing about them.
//
//   deno task bench                      # PGlite
//   AEGIS_TEST_PG_DSN=postgres://… deno task bench   # a real PostgreSQL (fresh database)
//   deno task bench --streams 1000 --enrollments 300
//   deno task bench --parts enrollments --enrollments 2000   # only the enrollment rate
//
// The enrollment rate comes with the CPU each enrollment cost the controller, this client and
// the controller's PostgreSQL backends: on a shared or small machine the rate moves with
// whatever else runs, the CPU per enrollment much less.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import postgres from "postgres";
import {
  cpuSeconds,
  enrollOne,
  FLEET_FROM_ONE_ADDRESS,
  issueTokens,
  pool,
  rssKiB,
} from "./support.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { parseEdgeConfig } from "../shared/config/edge_config.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { EdgeConnection } from "../agent/daemon/connection.ts";
import { type ControllerProcess, startControllerProcess } from "../tests/support/controller.ts";
import { makeHost } from "../tests/support/host.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    enrollments: { type: "string", default: "200" },
    concurrency: { type: "string", default: "16" },
    streams: { type: "string", default: "1000" },
    parts: { type: "string", default: "enrollments,daemon,streams" },
  },
});
const parts = new Set(values.parts.split(","));

/** Ends the bench early, once the parts asked for are done. */
class Done extends Error {}

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
  if (parts.has("enrollments")) {
    const tokens = await issueTokens(controller, enrollments);
    const keys = tokens.map(() => NodePrivateKey.generate());
    // Backends connected during the run count from zero (they started within it, give or take).
    const backendCpu = async () =>
      (await postgresBackends(controller.db.dsn)).reduce(
        (sum, pid) => sum + (tryCpuSeconds(pid) ?? 0),
        0,
      );
    const cpu = async () => ({
      controller: cpuSeconds(controller.process.child.pid),
      client: cpuSeconds(Deno.pid),
      postgres: await backendCpu(),
    });
    const before = await cpu();
    const started = performance.now();
    await pool(tokens.map((t, i) => [t, keys[i]] as const), concurrency, async ([token, key]) => {
      await enrollOne(client, token, key);
    });
    const seconds = (performance.now() - started) / 1000;
    const after = await cpu();
    const perEnrollment = (k: keyof typeof before) =>
      `${((after[k] - before[k]) * 1000 / enrollments).toFixed(2)} ms`;
    console.log(
      `enrollments: ${enrollments} in ${seconds.toFixed(2)}s = ${
        (enrollments / seconds).toFixed(1)
      }/s (concurrency ${concurrency})`,
    );
    console.log(
      `CPU per enrollment: controller ${perEnrollment("controller")}, bench client ${
        perEnrollment("client")
      }` + (controller.db.dsn ? `, PostgreSQL backends ${perEnrollment("postgres")}` : ""),
    );
  }
  if (!parts.has("daemon") && !parts.has("streams")) {
    client.close();
    throw new Done();
  }

  // 2. Idle RSS of a real daemon process.
  if (parts.has("daemon")) await daemonIdleRss(controller);
  if (!parts.has("streams")) {
    client.close();
    throw new Done();
  }

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
} catch (error) {
  if (!(error instanceof Done)) throw error;
} finally {
  await controller.stop();
}
Deno.exit(0);

/** Idle RSS of a real daemon process enrolled with this controller. */
async function daemonIdleRss(controller: ControllerProcess) {
  const host = await makeHost();
  const { token } = await controller.issueEnrollment("bench");
  const enrolled = await host.aegis([
    "edge",
    "enroll",
    token,
    "--non-interactive",
    "--no-service",
  ]);
  if (enrolled.code !== 0) throw new Error(enrolled.stderr);
  const daemon = host.startDaemon();
  await daemon.waitFor(/stream connected/, 30_000);
  await new Promise((r) => setTimeout(r, 5000));
  console.log(`daemon idle RSS: ${(rssKiB(daemon.child.pid) / 1024).toFixed(1)} MiB`);
  await host.cleanup();
}

/**
 * The PostgreSQL server processes serving this controller's database (its connection pool is
 * open by now), when the server runs on this machine; none on PGlite.
 */
async function postgresBackends(dsn: string | undefined): Promise<number[]> {
  if (!dsn) return [];
  const sql = postgres(dsn, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ pid: number }[]>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
    return rows.map((r) => r.pid).filter((pid) => tryCpuSeconds(pid) !== undefined);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function tryCpuSeconds(pid: number): number | undefined {
  try {
    return cpuSeconds(pid);
  } catch {
    return undefined; // not on this machine, or gone
  }
}
