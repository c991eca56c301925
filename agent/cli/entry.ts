// Which command tree a command line needs. Only `aegis edge run` (the daemon, what every edge
// host keeps running) gets the small tree; the rest of the CLI is loaded when it is asked for.
// The specifiers stay string literals: `deno compile` embeds what it can see statically, and a
// computed specifier would be missing from the binary.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";

// deno-lint-ignore no-explicit-any
export type BuildProgram = (io: Io, setExit: (code: number) => void) => Command<any, any, any>;

/** True for `aegis edge run …`; program-level options before `edge` take the full tree. */
export function isDaemonRun(args: readonly string[]): boolean {
  return args[0] === "edge" && args[1] === "run";
}

export async function loadProgram(args: readonly string[]): Promise<BuildProgram> {
  if (isDaemonRun(args)) return (await import("./daemon_program.ts")).buildDaemonProgram;
  return (await import("./program.ts")).buildProgram;
}

/**
 * Loads every module `aegis` has, daemon included, without running any. `aegis --version` does
 * this first: self-update's pre-flight runs the new binary's `--version`, and a module that
 * fails to load must fail there, while the old version still runs.
 */
export async function loadEverything(): Promise<void> {
  await import("./program.ts");
  // What the daemon imports only when it needs it (daemon.ts, node_tools.ts, pending_guard.ts):
  // the full tree loads these too today, but the pre-flight must not depend on that.
  await Promise.all([
    import("../keys/rotate.ts"),
    import("../keys/refresh.ts"),
    import("../update/daemon_update.ts"),
    import("../update/stage.ts"),
  ]);
}
