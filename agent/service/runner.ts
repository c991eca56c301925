// The one place the service module starts processes. Everything else takes a CommandRunner, so
// tests replace the host's service managers with plain functions.
import { DAEMON_ARGS } from "./types.ts";
import type { CommandResult, CommandRunner, Outcome, ServiceContext } from "./types.ts";
import { commandLine } from "./quote.ts";

export const realRunner: CommandRunner = async (cmd, args) => {
  try {
    const options = { args, stdin: "null", stdout: "piped", stderr: "piped" } as const;
    const out = await new Deno.Command(cmd, options).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "not-found";
    throw error;
  }
};

/** Runs a command and records it (and any failure) in the report's transcript. */
export async function exec(
  ctx: ServiceContext,
  log: string[],
  argv: string[],
): Promise<CommandResult> {
  const [cmd, ...args] = argv;
  log.push(commandLine(ctx.os, argv));
  const result = await ctx.run(cmd, args);
  if (result === "not-found") log.push(`! ${cmd}: not found`);
  else if (result.code !== 0) {
    const why = (result.stderr || result.stdout).trim().split("\n")[0] ?? "";
    log.push(`! ${cmd} exited ${result.code}${why ? `: ${why}` : ""}`);
  }
  return result;
}

export function succeeded(result: CommandResult): boolean {
  return result !== "not-found" && result.code === 0;
}

/**
 * The outcome when the manager could not be driven from here: the commands to run by hand and,
 * for installs, the reminder that the daemon does not need a service manager at all.
 */
export function unreachable(ctx: ServiceContext, argvs: string[][], foreground = true): Outcome {
  const instructions = argvs.map((argv) => commandLine(ctx.os, argv));
  if (foreground) {
    const self = commandLine(ctx.os, [...ctx.command, ...DAEMON_ARGS]);
    instructions.push(`or run the daemon in the foreground: ${self}`);
  }
  return { reachable: false, started: false, instructions };
}
