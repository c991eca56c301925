// Fleet key rotation over many simulated daemons, and the LISTEN/NOTIFY hop between relays.
// A simulated daemon is the real daemon code for this path (stream, node tool, dual-signed
// rotation, file swap) with its own state directory; many of them share this process.
//
//   deno task bench:fleet [--daemons 1000]          (the NOTIFY hop needs AEGIS_TEST_PG_DSN)
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { parseEndpoint } from "../shared/endpoint.ts";
import { parseEdgeConfig, renderEdgeConfig } from "../shared/config/edge_config.ts";
import { ensureDir, writeFileAtomic } from "../shared/fs/atomic.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { EdgeConnection } from "../agent/daemon/connection.ts";
import { runNodeTool } from "../agent/daemon/node_tools.ts";
import { edgePaths } from "../agent/state/paths.ts";
import { openDb } from "../controller/store/db.ts";
import { type ControllerProcess, startControllerProcess } from "../tests/support/controller.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";
import {
  enrollOne,
  FLEET_FROM_ONE_ADDRESS,
  issueTokens,
  percentile,
  pool,
  type SimulatedNode,
} from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { daemons: { type: "string", default: "1000" } },
});
const count = Number(values.daemons);

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

async function simulatedDaemon(endpointUrl: string, node: SimulatedNode, root: string) {
  const paths = edgePaths(`${root}/${node.nodeId}`);
  await ensureDir(paths.dir, 0o700);
  const config = parseEdgeConfig(`cluster:\n  endpoints: ["${endpointUrl}"]\n`);
  await writeFileAtomic(paths.config, renderEdgeConfig(config), { mode: 0o600 });
  await writeFileAtomic(paths.key, node.key.toPem(), { mode: 0o600 });
  await writeFileAtomic(paths.nodeToken, node.token + "\n", { mode: 0o600 });
  const endpoint = parseEndpoint(endpointUrl);
  const client = await createNodeClient(endpoint);
  const connection = await EdgeConnection.open(client, endpoint, node, config, hostname());
  const emit = (callId: string, event: unknown) =>
    connection.send({ case: "toolEvent", value: { callId, event } as never });
  (async () => {
    for await (const message of connection.messages()) {
      if (message.body.case === "toolCall") {
        void runNodeTool(message.body.value, paths, emit as never, () => {});
      }
    }
  })().catch(() => {});
  return { client, connection };
}

async function fleetRotate(controller: ControllerProcess, token: string, mode: string) {
  const cpuBefore = cpuSeconds(controller.process.child.pid);
  const started = performance.now();
  const response = await controller.api("/v1/edge/fleet/operations", {
    method: "POST",
    token,
    body: JSON.stringify({
      operation: "keys.rotate",
      target: "all",
      mode,
      on_error: "continue",
      deadline_secs: 120,
    }),
  });
  const text = await response.text();
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(controller.process.child.pid) - cpuBefore;
  const summary = JSON.parse(text.trim().split("\n").at(-1)!);
  console.log(
    `fleet keys rotate --mode ${mode}: ${seconds.toFixed(1)} s wall, controller CPU ${
      cpu.toFixed(1)
    } s, ` +
      `results ${JSON.stringify(summary.counts)}` + firstFailure(text),
  );
}

async function notifyHop(dsn: string) {
  const a = await openDb({ dsn });
  const b = await openDb({ dsn });
  const samples: number[] = [];
  let resolve: () => void = () => {};
  const stop = await b.listen("aegis_bench_hop", () => resolve());
  for (let i = 0; i < 200; i++) {
    const arrived = new Promise<void>((r) => resolve = r);
    const started = performance.now();
    await a.notify("aegis_bench_hop", String(i));
    await arrived;
    samples.push(performance.now() - started);
  }
  await stop();
  await a.close();
  await b.close();
  samples.sort((x, y) => x - y);
  console.log(
    `LISTEN/NOTIFY hop between two connections: p50 ${percentile(samples, 50).toFixed(2)} ms  p99 ${
      percentile(samples, 99).toFixed(2)
    } ms`,
  );
}

console.log(
  `# fleet bench on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores), ${count} daemons`,
);
const controller = await startControllerProcess({
  edge: "attest_rate_limit_per_min: 1000000",
  yaml: FLEET_FROM_ONE_ADDRESS,
});
const root = await Deno.makeTempDir({ prefix: "aegis-fleet-bench-" });
const daemons: { client: NodeClient; connection: EdgeConnection }[] = [];
try {
  const enroller = await createNodeClient(parseEndpoint(controller.endpoint));
  const nodes: SimulatedNode[] = [];
  await pool(
    await issueTokens(controller, count),
    16,
    async (t) => void nodes.push(await enrollOne(enroller, t)),
  );
  enroller.close();
  await pool(
    nodes,
    32,
    async (node) => void daemons.push(await simulatedDaemon(controller.endpoint, node, root)),
  );
  const operator = await controller.operatorToken("bench", "operator");
  await fleetRotate(controller, operator, "rolling=10");
  await fleetRotate(controller, operator, "parallel");
} finally {
  for (const d of daemons) {
    d.connection.close();
    d.client.close();
  }
  await controller.stop();
  await Deno.remove(root, { recursive: true });
}
const dsn = Deno.env.get("AEGIS_TEST_PG_DSN");
if (dsn) await notifyHop(dsn);
else console.log("LISTEN/NOTIFY hop: set AEGIS_TEST_PG_DSN to measure it on PostgreSQL");
Deno.exit(0);

function firstFailure(ndjson: string): string {
  const failed = ndjson.trim().split("\n").map((l) => JSON.parse(l)).find((e) =>
    e.type === "result" && e.status !== "ok"
  );
  return failed ? ` (first failure: ${failed.detail})` : "";
}
