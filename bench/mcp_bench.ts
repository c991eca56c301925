// The MCP endpoint against the REST path, through a real controller process and a real daemon:
// the round trip of the host's echo tool (a full tool call through policy and events, no process
// behind it) over REST (POST …/calls, NDJSON) and over MCP (aegis.edge.tool.call, both protocol
// versions), and how long cancelling a root execution takes to kill `sleep` on three hosts.
// Prints numbers; asserts nothing.
//
//   deno task bench:mcp [--calls 300] [--cancels 5]
import { parseArgs } from "node:util";
import { startControllerProcess } from "../tests/support/controller.ts";
import { enrollNewHost, type Host } from "../tests/support/host.ts";
import { connectMcp, MCP_PROTOCOLS } from "../tests/support/mcp_client.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";
import { percentile } from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "300" },
    cancels: { type: "string", default: "5" },
  },
});
const calls = Number(values.calls);
const cancels = Number(values.cancels);

const controller = await startControllerProcess();
const hosts: Host[] = [];
try {
  const nodeIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const enrolled = await enrollNewHost(controller, {
      tenant: "bench",
      name: `h${i}`,
      localTools: "shell,echo",
    });
    hosts.push(enrolled.host);
    nodeIds.push(enrolled.nodeId);
  }
  const daemons = hosts.map((h) => h.startDaemon());
  await Promise.all(daemons.map((d) => d.waitFor(/stream connected/)));
  const token = await controller.operatorToken("bench", "admin");
  const nodeId = nodeIds[0];

  const report = (label: string, samples: number[]) => {
    const sorted = [...samples].sort((a, b) => a - b);
    console.log(
      `${label.padEnd(28)} n=${sorted.length}  p50 ${percentile(sorted, 50).toFixed(2)} ms  ` +
        `p99 ${percentile(sorted, 99).toFixed(2)} ms`,
    );
  };

  const rest = async () => {
    const started = performance.now();
    const response = await fetch(`${controller.endpoint}/v1/edge/hosts/${nodeId}/calls`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ tool: "echo", arguments: { message: "hello" } }),
    });
    const text = await response.text();
    if (!text.includes('"exit"')) throw new Error(`REST echo failed: ${text}`);
    return performance.now() - started;
  };
  for (let i = 0; i < 20; i++) await rest(); // warm-up
  const restSamples: number[] = [];
  for (let i = 0; i < calls; i++) restSamples.push(await rest());

  const mcpSamples = new Map<string, number[]>();
  for (const protocol of MCP_PROTOCOLS) {
    const mcp = await connectMcp(`${controller.endpoint}/mcp/v1`, { token, protocol });
    const one = async () => {
      const started = performance.now();
      const result = await mcp.callTool("aegis.edge.tool.call", {
        node_id: nodeId,
        tool: "echo",
        arguments: { message: "hello" },
      });
      if ((result.structuredContent as { exit_code?: number }).exit_code !== 0) {
        throw new Error(`MCP echo failed: ${JSON.stringify(result)}`);
      }
      return performance.now() - started;
    };
    for (let i = 0; i < 20; i++) await one();
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) samples.push(await one());
    mcpSamples.set(protocol, samples);
    await mcp.close();
  }

  // Root cancel → the last remote `sleep` gone, over three hosts.
  const cancelSamples: number[] = [];
  const mcp = await connectMcp(`${controller.endpoint}/mcp/v1`, { token });
  for (let round = 0; round < cancels; round++) {
    const seconds = 60_000 + Math.floor(Math.random() * 30_000);
    const task = await mcp.callTool("aegis.execution.start", { title: `bench ${round}` });
    const rootId = (task.structuredContent as { execution: { id: string } }).execution.id;
    const running = mcp.callTool("aegis.edge.fleet.exec", {
      target: "all",
      argv: ["sleep", String(seconds)],
      mode: "parallel",
      deadline_secs: 600,
      execution_id: rootId,
    }, { allowToolError: true, timeoutMs: 120_000 });
    running.catch(() => {});
    while ((await sleepers(seconds)).length < 3) await delay(10);
    const started = performance.now();
    const response = await fetch(`${controller.endpoint}/v1/executions/${rootId}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    await response.body?.cancel();
    while ((await sleepers(seconds)).length > 0) await delay(2);
    cancelSamples.push(performance.now() - started);
    await running;
  }
  await mcp.close();

  console.log(`# MCP vs REST on ${TEST_DB_KIND}, one controller process, real daemons`);
  report("REST echo round trip", restSamples);
  for (const [protocol, samples] of mcpSamples) report(`MCP ${protocol} echo`, samples);
  report("root cancel → 3 sleeps gone", cancelSamples);
} finally {
  await Promise.all(hosts.map((h) => h.cleanup()));
  await controller.stop();
}

async function sleepers(seconds: number): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-x", "-f", `sleep ${seconds}`] }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

function delay(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
