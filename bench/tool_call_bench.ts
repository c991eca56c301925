// Tool-call round trips through a real controller process: operator REST call → controller →
// ConnectEdge stream → daemon tool runtime → events back. Simulated daemons are the real stream
// and tool-runtime code, many to one process. Prints numbers; asserts nothing.
//
//   deno task bench:calls [--daemons 1000] [--calls 200]
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { parseEndpoint } from "../shared/endpoint.ts";
import { parseEdgeConfig } from "../shared/config/edge_config.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { EdgeConnection } from "../agent/daemon/connection.ts";
import { toolCallRequest, ToolRunner } from "../agent/tools/mod.ts";
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
  options: {
    daemons: { type: "string", default: "1000" },
    calls: { type: "string", default: "200" },
  },
});
const config = parseEdgeConfig(
  `local_tools: [shell, echo]\nmount_points: ["${Deno.makeTempDirSync()}"]\nedge:\n  max_concurrent_calls: 64\n`,
);

interface Daemon {
  connection: EdgeConnection;
  client: NodeClient;
  runner: ToolRunner;
}

async function startDaemon(endpointUrl: string, node: SimulatedNode): Promise<Daemon> {
  const endpoint = parseEndpoint(endpointUrl);
  const client = await createNodeClient(endpoint);
  const connection = await EdgeConnection.open(client, endpoint, node, config, hostname());
  const runner = new ToolRunner(
    { config, resolveSecret: () => Promise.resolve(undefined), log: () => {} },
    (callId, event) => connection.send({ case: "toolEvent", value: { callId, event } as never }),
  );
  (async () => {
    for await (const message of connection.messages()) {
      const body = message.body;
      if (body.case === "toolCall") {
        runner.start(toolCallRequest(body.value));
      } else if (body.case === "toolCancel") runner.cancel(body.value.callId, body.value.reason);
    }
  })().catch(() => {});
  return { connection, client, runner };
}

/** One call over REST; resolves with the milliseconds to the exit event and the bytes seen. */
async function call(controller: ControllerProcess, token: string, nodeId: string, body: unknown) {
  const started = performance.now();
  const response = await controller.api(`/v1/edge/hosts/${nodeId}/calls`, {
    method: "POST",
    token,
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
  let bytes = 0;
  let text = "";
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    bytes += chunk.length;
    text = (text + chunk).slice(-4096);
  }
  if (!/"type":"exit"/.test(text)) throw new Error(`no exit event: ${text.slice(-300)}`);
  return { ms: performance.now() - started, bytes };
}

async function roundTrips(
  controller: ControllerProcess,
  token: string,
  nodeId: string,
  count: number,
) {
  for (
    const [label, body] of [
      ["echo (no process)", { tool: "echo", arguments: { message: "ping" } }],
      ["cmd.run true", { tool: "cmd.run", arguments: { argv: ["true"] } }],
    ] as const
  ) {
    for (let i = 0; i < 10; i++) await call(controller, token, nodeId, body); // warm up
    const samples: number[] = [];
    for (let i = 0; i < count; i++) samples.push((await call(controller, token, nodeId, body)).ms);
    samples.sort((a, b) => a - b);
    console.log(
      `  ${label.padEnd(18)} p50 ${percentile(samples, 50).toFixed(2)} ms  p99 ${
        percentile(samples, 99).toFixed(2)
      } ms  (n=${count})`,
    );
  }
}

const daemonCount = Number(values.daemons);
const callCount = Number(values.calls);
console.log(
  `# tool-call bench on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores)`,
);
const controller = await startControllerProcess({
  edge: "attest_rate_limit_per_min: 1000000",
  yaml: FLEET_FROM_ONE_ADDRESS,
});
const daemons: Daemon[] = [];
try {
  const enrollClient = await createNodeClient(parseEndpoint(controller.endpoint));
  const tokens = await issueTokens(controller, daemonCount);
  const nodes: SimulatedNode[] = [];
  await pool(tokens, 16, async (t) => void nodes.push(await enrollOne(enrollClient, t)));
  enrollClient.close();
  const operator = await controller.operatorToken("bench", "operator");

  daemons.push(await startDaemon(controller.endpoint, nodes[0]));
  console.log("with 1 connected daemon:");
  await roundTrips(controller, operator, nodes[0].nodeId, callCount);

  const megabytes = 48;
  const big = await call(controller, operator, nodes[0].nodeId, {
    tool: "cmd.run",
    arguments: {
      argv: ["head", "-c", String(megabytes * 1024 * 1024), "/dev/zero"],
      max_output_bytes: 64 * 1024 * 1024,
    },
    timeout_secs: 120,
  });
  console.log(
    `  streamed output: ${megabytes} MiB in ${(big.ms / 1000).toFixed(2)} s = ${
      (megabytes / (big.ms / 1000)).toFixed(1)
    } MiB/s (NDJSON+base64 on the wire: ${(big.bytes / 1048576).toFixed(0)} MiB)`,
  );

  await pool(
    nodes.slice(1),
    32,
    async (node) => void daemons.push(await startDaemon(controller.endpoint, node)),
  );
  console.log(`with ${daemons.length} connected daemons:`);
  await roundTrips(controller, operator, nodes[Math.floor(nodes.length / 2)].nodeId, callCount);
} finally {
  for (const d of daemons) {
    await d.runner.shutdown();
    d.connection.close();
    d.client.close();
  }
  await controller.stop();
}
Deno.exit(0);
