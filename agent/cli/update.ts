// `aegis update`: self-update from the controller this host is enrolled with. The release is
// verified with the key compiled into this binary (fail-closed), installed beside the current
// version, switched to atomically, and kept only if its daemon reaches Connected in time.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { parseDuration } from "../../shared/duration.ts";
import { AegisError } from "../../shared/errors.ts";
import { releaseVerificationKey } from "../../shared/release/build_info.ts";
import { edgePaths } from "../state/paths.ts";
import { runUpdate, type UpdateResult } from "../update/mod.ts";
import { caFileOption, type CliContext, outputOption } from "./context.ts";

interface UpdateFlags {
  check?: boolean;
  version?: string;
  deadline: string;
  caFile?: string;
  output: string;
}

export async function update(flags: UpdateFlags, io: Io): Promise<number> {
  const deadlineMs = parseDuration(flags.deadline, "--deadline");
  if (deadlineMs < 5_000 || deadlineMs > 3_600_000) {
    throw new AegisError("INVALID_ARGUMENT", "--deadline must be between 5s and 1h");
  }
  const result = await runUpdate(edgePaths(), {
    check: flags.check === true,
    version: flags.version,
    deadlineMs,
    caFile: flags.caFile,
    publicKey: releaseVerificationKey,
  }, (line) => io.err(`${line}\n`));
  if (flags.output === "json") io.out(JSON.stringify(result, null, 2) + "\n");
  else io.out(render(result));
  return 0;
}

function render(r: UpdateResult): string {
  switch (r.status) {
    case "current":
      return `✔ ${r.to} is the current release; nothing to do\n`;
    case "available":
      return `${r.from} → ${r.to} available; run \`aegis update\` to install it\n`;
    case "installed":
      return `✔ installed ${r.to} (was ${r.from}); no daemon runs, the next start uses it\n`;
    case "updated":
      return `✔ updated ${r.from} → ${r.to}: the daemon reconnected in ${r.connect_secs}s ` +
        `(${r.total_secs}s in all)\n`;
  }
}

export function registerUpdate(program: Command, { io, setExit }: CliContext): void {
  program.command("update")
    .description("update this host's aegis from the controller it is enrolled with")
    .option("--check", "only say whether a newer release is served")
    .option("--version <version>", "update only if the controller serves exactly this version")
    .option("--deadline <duration>", "time for the new daemon to reach Connected", "60s")
    .addOption(caFileOption())
    .addOption(outputOption())
    .action(async (opts) => setExit(await update(opts, io)));
}
