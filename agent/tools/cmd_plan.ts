// Turns a cmd.run call into exactly what will be spawned, or a refusal. Everything the host's
// policy has to say is said here, before a process exists.
import type { ToolContext } from "./types.ts";
import { CmdRunArgsSchema, parseArguments } from "./arguments.ts";
import { checkCmdAllowed, resolveCwd } from "./policy.ts";
import { checkEnvAllowed, checkLauncherEnv } from "./env_policy.ts";
import { buildEnv } from "./env.ts";
import { sandboxFor } from "./sandbox.ts";
import { edgePaths } from "../state/paths.ts";
import type { SpawnSpec } from "./process_tree.ts";
import { ToolRefusal } from "./refusal.ts";

export interface CmdPlan {
  spawn: SpawnSpec;
  stdin?: string;
  timeoutMs: number;
  maxOutputBytes: number;
  /** For logs: the program, never its arguments or environment. */
  label: string;
}

export async function planCmd(
  ctx: ToolContext,
  argumentsJson: string,
  deadline: Date | undefined,
  now: () => number = Date.now,
): Promise<CmdPlan> {
  const args = parseArguments("cmd.run", argumentsJson, CmdRunArgsSchema);
  checkCmdAllowed(ctx.config, args);
  checkEnvAllowed(ctx.config, args.env);
  const stateDir = ctx.stateDir ?? edgePaths().dir;
  const realState = await Deno.realPath(stateDir).catch(() => undefined);
  const cwd = await resolveCwd(ctx.config, args.cwd, realState ?? stateDir);
  const wrapper = await sandboxFor(ctx.config, realState ? [realState] : [], cwd);
  if (wrapper) checkLauncherEnv(args.env);
  const env = await buildEnv(args.env, (name) => ctx.resolveSecret(name));
  // Measured after the awaits above: a slow secret backend spends the call's time, not extra.
  const timeoutMs = Math.min(
    args.timeout_secs * 1000,
    deadline ? deadline.getTime() - now() : Infinity,
  );
  if (timeoutMs <= 0) {
    throw new ToolRefusal("DEADLINE_EXCEEDED", "the call's deadline passed before it could start");
  }
  const [program, ...rest] = args.argv ?? shellArgv(args.shell!);
  const spawn = { program, args: rest, cwd, env, stdin: args.stdin !== undefined, wrapper };
  return {
    spawn: args.shell !== undefined && Deno.build.os === "windows"
      ? { ...spawn, rawArgs: true }
      : spawn,
    stdin: args.stdin,
    timeoutMs,
    maxOutputBytes: args.max_output_bytes,
    label: args.argv ? program : "shell",
  };
}

function shellArgv(script: string): string[] {
  // /s strips exactly the outer quotes, leaving the script byte for byte; /d skips AutoRun.
  if (Deno.build.os === "windows") return ["cmd.exe", "/d", "/s", "/c", `"${script}"`];
  return ["/bin/sh", "-c", script];
}
