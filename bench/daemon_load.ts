// What a daemon's V8 flags cost when it works: tool calls through the real controller (small
// calls and one large output) and a reconnect after the controller restarts, each timed on the
// wall clock and in the daemon's own CPU time (/proc/<pid>/stat), which a busy machine distorts
// less than wall time.
import type { ControllerProcess } from "../tests/support/controller.ts";
import type { Background } from "../tests/support/processes.ts";

const TICKS_PER_SEC = 100; // USER_HZ on Linux

export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which may itself hold spaces: utime is the 14th, stime 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / TICKS_PER_SEC;
}

async function exec(controller: ControllerProcess, token: string, nodeId: string, argv: string[]) {
  const response = await controller.api(`/v1/edge/hosts/${nodeId}/exec`, {
    method: "POST",
    token,
    body: JSON.stringify({ argv, timeout_secs: 120 }),
  });
  const lines = (await response.text()).trim().split("\n").map((l) => JSON.parse(l));
  const exit = lines.find((l) => l.type === "exit");
  if (exit?.exit_code !== 0) {
    throw new Error(`exec ${argv.join(" ")}: ${JSON.stringify(lines.at(-1))}`);
  }
  return lines;
}

export interface LoadResult {
  smallMs: number;
  smallCpuMs: number;
  bulkMiBps: number;
  bulkCpuMs: number;
  reconnectMs: number;
  reconnectCpuMs: number;
}

export async function measureLoad(
  controller: ControllerProcess,
  daemon: Background,
  nodeId: string,
  options: { calls: number; bulkMiB: number },
): Promise<LoadResult> {
  const pid = daemon.child.pid;
  const token = await controller.operatorToken("bench", "operator");
  await exec(controller, token, nodeId, ["true"]); // first call compiles the tool path

  let cpu = cpuMs(pid);
  let started = performance.now();
  for (let i = 0; i < options.calls; i++) await exec(controller, token, nodeId, ["echo", "hi"]);
  const smallMs = (performance.now() - started) / options.calls;
  const smallCpuMs = (cpuMs(pid) - cpu) / options.calls;

  cpu = cpuMs(pid);
  started = performance.now();
  await exec(controller, token, nodeId, ["head", "-c", String(options.bulkMiB << 20), "/dev/zero"]);
  const bulkMiBps = options.bulkMiB / ((performance.now() - started) / 1000);
  const bulkCpuMs = cpuMs(pid) - cpu;

  const connects = () => daemon.stderr.match(/stream connected/g)?.length ?? 0;
  const before = connects();
  await controller.restart();
  cpu = cpuMs(pid);
  started = performance.now();
  while (connects() === before) await new Promise((r) => setTimeout(r, 20));
  return {
    smallMs,
    smallCpuMs,
    bulkMiBps,
    bulkCpuMs,
    reconnectMs: performance.now() - started,
    reconnectCpuMs: cpuMs(pid) - cpu,
  };
}
