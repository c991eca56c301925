// The one place the service module starts processes. Everything else takes a CommandRunner, so
// tests replace the host's service managers with plain functions.
import type { CommandResult, CommandRunner, ServiceContext } from "./types.ts";
import { commandLine } from "./quote.ts";

export const realRunner: CommandRunner = async (cmd, args) => {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
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

/** The line every unreachable report ends with: the daemon does not need a service manager. */
export function foregroundHint(ctx: ServiceContext): string {
  return `or run the daemon in the foreground: ${commandLine(ctx.os, [...ctx.command, "edge", "run"])}`;
}
