// The command tree when the command line is `aegis edge run …`: the daemon alone. The daemon
// runs for months, and what it loads it keeps; the full tree (program.ts) would bring prompts,
// enrollment, service managers, self-update and the operator's fleet commands into every edge
// host's memory for nothing. Built in the same order as program.ts, so `edge run` parses and
// prints its help exactly as it does there.
import type { Io } from "../../shared/cli/io.ts";
import { rootProgram } from "./root.ts";
import { registerRun } from "./run.ts";

export function buildDaemonProgram(io: Io, setExit: (code: number) => void) {
  const { program, edge } = rootProgram(io);
  registerRun(edge, { io, setExit });
  program.enablePositionalOptions();
  return program;
}
