// The root of the `aegis` command tree, shared by the full tree (program.ts) and the daemon's
// own small tree (daemon_program.ts), so `aegis edge run` parses and helps the same either way.
import { Command } from "@commander-js/extra-typings";
import { VERSION } from "../../shared/version.ts";
import type { Io } from "../../shared/cli/io.ts";

export function rootProgram(io: Io) {
  const program = new Command("aegis")
    .description("AEGIS Edge: CLI, edge daemon and fleet tool")
    .version(VERSION);
  program.configureOutput({ writeOut: io.out, writeErr: io.err });
  program.showHelpAfterError();
  const edge = program.command("edge").description("edge hosts: enroll, run, inspect and operate");
  return { program, edge };
}
