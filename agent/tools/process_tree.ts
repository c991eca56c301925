// Starting a command as the root of its own process tree, and ending that whole tree. Killing just
// the direct child would leave `sh -c 'a & b & wait'` orphans running, still holding our pipes.
import { ToolRefusal } from "./refusal.ts";
import type { Wrapper } from "./sandbox.ts";
import { findProgram } from "./which.ts";

const windows = Deno.build.os === "windows";

export interface SpawnSpec {
  program: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  stdin: boolean;
  /** cmd.exe parses its own command line; Rust-style quoting would mangle it. */
  rawArgs?: boolean;
  /** Runs `wrapper.program ...wrapper.args -- program ...args` (the sandbox). */
  wrapper?: Wrapper;
}

export function spawnTree(spec: SpawnSpec): Deno.ChildProcess {
  const { wrapper } = spec;
  // The wrapper would report a missing program as its own exit status; say it as a refusal.
  if (wrapper && !findProgram(spec.program, spec.env.PATH, spec.cwd)) {
    throw new ToolRefusal("COMMAND_NOT_FOUND", `"${spec.program}" was not found on this host`);
  }
  try {
    return new Deno.Command(wrapper?.program ?? spec.program, {
      args: wrapper ? [...wrapper.args, "--", spec.program, ...spec.args] : spec.args,
      cwd: spec.cwd,
      env: spec.env,
      clearEnv: true,
      stdin: spec.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      // On Unix the child leads a new session and so its own process group (pgid = pid).
      detached: true,
      windowsRawArguments: spec.rawArgs,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ToolRefusal("COMMAND_NOT_FOUND", `"${spec.program}" was not found on this host`);
    }
    const message = `"${spec.program}" could not be started: ${(error as Error).message}`;
    throw new ToolRefusal("SPAWN_FAILED", message, { cause: error });
  }
}

/**
 * SIGTERM to the group, then SIGKILL once `settled` resolves or `graceMs` passes. `settled` should
 * mean "leader exited and pipes closed": the best cheap sign the tree is gone, and otherwise the
 * stragglers still get their grace.
 */
export async function killTree(
  child: Deno.ChildProcess,
  settled: Promise<unknown>,
  graceMs: number,
): Promise<void> {
  if (windows) {
    const taskkill = new Deno.Command("taskkill", {
      args: ["/T", "/F", "/PID", String(child.pid)],
      stdout: "null",
      stderr: "null",
    });
    await taskkill.output().catch(() => {});
    return;
  }
  if (!signalGroup(child.pid, "SIGTERM")) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const grace = new Promise((resolve) => timer = setTimeout(resolve, graceMs));
  await Promise.race([settled, grace]);
  clearTimeout(timer);
  signalGroup(child.pid, "SIGKILL");
}

/** False when no member of the group could be signalled (ESRCH: none left; EPERM: not ours). */
function signalGroup(pgid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
