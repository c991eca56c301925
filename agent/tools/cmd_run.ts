// Runs a planned cmd.run to its end: output streamed as it comes, the tree killed on timeout or
// cancel, and one ToolExit describing how it ended.
import { create } from "@bufbuild/protobuf";
import { type ToolExit, ToolExitSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { CmdPlan } from "./cmd_plan.ts";
import { OutputBudget, pump } from "./output.ts";
import { killTree, spawnTree } from "./process_tree.ts";
import type { ToolEventBody } from "./types.ts";

export const KILL_GRACE_MS = 2000;
/** After the kill, how long pipes held by escaped processes (setsid, daemons) may delay the exit. */
const DRAIN_MS = 500;

export async function runCmd(
  plan: CmdPlan,
  emit: (event: ToolEventBody) => void,
  signal: AbortSignal,
  onSpawn: (pid: number) => void = () => {},
): Promise<ToolExit> {
  const started = performance.now();
  const child = spawnTree(plan.spawn);
  onSpawn(child.pid);
  const budget = new OutputBudget(plan.maxOutputBytes);
  const pumps = [
    pump(child.stdout, "stdout", budget, emit),
    pump(child.stderr, "stderr", budget, emit),
  ];
  const drained = Promise.all(pumps.map((p) => p.done));
  feedStdin(child, plan.stdin);

  let timedOut = false;
  let killing: Promise<void> | undefined;
  const killDone = Promise.withResolvers<void>();
  const kill = () => {
    const settled = Promise.all([child.status, drained]);
    killing ??= killTree(child, settled, KILL_GRACE_MS).finally(killDone.resolve);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, plan.timeoutMs);
  signal.addEventListener("abort", kill);
  if (signal.aborted) kill();

  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  try {
    const status = await child.status;
    // Like $(...) in a shell, the call lasts until its output closes even if the leader is gone,
    // bounded by the timeout. Once the tree is killed, only a short drain window is left.
    const giveUp = killDone.promise.then(() =>
      new Promise<void>((resolve) => drainTimer = setTimeout(resolve, DRAIN_MS))
    );
    await Promise.race([drained, giveUp]);
    for (const p of pumps) p.cancel();
    await drained;
    await killing;
    const windowsKill = killing !== undefined && Deno.build.os === "windows";
    return create(ToolExitSchema, {
      exitCode: status.code,
      signal: status.signal ?? (windowsKill ? "SIGKILL" : ""),
      timedOut,
      truncated: budget.truncated,
      durationMs: BigInt(Math.round(performance.now() - started)),
    });
  } finally {
    clearTimeout(timer);
    clearTimeout(drainTimer);
    signal.removeEventListener("abort", kill);
  }
}

function feedStdin(child: Deno.ChildProcess, stdin: string | undefined): void {
  if (stdin === undefined) return;
  const writer = child.stdin.getWriter();
  // A child that exits without reading its input is not an error of the call.
  writer.write(new TextEncoder().encode(stdin))
    .then(() => writer.close())
    .catch(() => writer.abort().catch(() => {}));
}
