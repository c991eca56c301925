// The `aegis` command tree. Each subcommand lives in its own file with a register function
// that adds it to the tree; commands return an exit status, only main.ts exits.
import type { Io } from "../../shared/cli/io.ts";
import type { CliContext } from "./context.ts";
import { rootProgram } from "./root.ts";
import { registerEnroll } from "./enroll.ts";
import { registerRun } from "./run.ts";
import { registerStatus } from "./status.ts";
import { registerHosts } from "./hosts.ts";
import { registerExec } from "./exec.ts";
import { registerLogout } from "./logout.ts";
import { registerSecrets } from "./secrets.ts";
import { registerService } from "./service.ts";
import { registerKeys } from "./keys.ts";
import { registerFleet } from "./fleet.ts";
import { registerTags } from "./tags.ts";
import { registerApproved } from "./approved.ts";
import { addOperatorTokenFile } from "./operator_token.ts";
import { registerUpdate } from "./update.ts";
import { registerAudit } from "./audit.ts";
import { registerExecutions } from "./executions.ts";

export function buildProgram(io: Io, setExit: (code: number) => void) {
  const { program, edge } = rootProgram(io);
  const ctx: CliContext = { io, setExit };
  const commands = [
    registerEnroll,
    registerRun,
    registerStatus,
    registerHosts,
    registerExec,
    registerLogout,
    registerSecrets,
    registerService,
    registerKeys,
    registerFleet,
    registerTags,
    registerApproved,
  ];
  for (const register of commands) register(edge, ctx);
  // `aegis update` updates the binary itself, so it sits beside `edge`, not under it. Its
  // `--version V` must not be taken for the program's own --version: program options are read
  // only before the subcommand (`aegis --version`), each subcommand reads its own.
  program.enablePositionalOptions();
  registerUpdate(program, ctx);
  // `aegis audit` is about the tenant, not one edge host: it sits beside `edge` too.
  registerAudit(program, ctx);
  registerExecutions(program, ctx);
  addOperatorTokenFile(program, io);
  return program;
}
