// The `aegis` command tree. Each subcommand lives in its own file and returns an exit status.
import { Command, Option } from "@commander-js/extra-typings";
import { VERSION } from "../../shared/version.ts";
import type { Io } from "../../shared/cli/io.ts";
import { enroll } from "./enroll.ts";
import { run } from "./run.ts";
import { status } from "./status.ts";

export function buildProgram(io: Io, setExit: (code: number) => void) {
  const program = new Command("aegis").description("AEGIS Edge: CLI, edge daemon and fleet tool")
    .version(VERSION);
  program.configureOutput({ writeOut: io.out, writeErr: io.err });
  program.showHelpAfterError();
  const output = () =>
    new Option("--output <format>", "output format").choices(["text", "json"]).default("text");

  const edge = program.command("edge").description(
    "edge hosts: enroll, run and inspect the daemon",
  );

  edge.command("enroll")
    .description("enroll this host with a one-time token and start the daemon")
    .argument("[token]", "the enrollment token (or use --token-file)")
    .option("--token-file <file>", "read the token from a file (`-` for standard input)")
    .option("--non-interactive", "fail rather than prompt")
    .option("--force", "overwrite on every conflict")
    .option("--keep-existing", "reuse on every conflict; fail if reuse would be unsafe")
    .option("--dry-run", "print the bootstrap plan; write nothing, contact nobody")
    .addOption(output())
    .option("--no-service", "do not install the service")
    .option("--ca-file <file>", "extra CA certificate(s) to trust for the controller")
    .action(async (token, opts) => setExit(await enroll(token, opts, io)));

  edge.command("run")
    .description("run the edge daemon in the foreground")
    .option("--ca-file <file>", "extra CA certificate(s) to trust for the controller")
    .action(async (opts) => setExit(await run(opts, io)));

  edge.command("status")
    .description("this node as the controller sees it")
    .addOption(output())
    .action(async (opts) => setExit(await status(opts, io)));

  return program;
}
