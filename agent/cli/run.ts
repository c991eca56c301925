// `aegis edge run`: the daemon in the foreground (what the service manager starts).
import type { Io } from "../../shared/cli/io.ts";
import type { Command } from "@commander-js/extra-typings";
import { caFileOption, type CliContext } from "./context.ts";
import { edgePaths } from "../state/paths.ts";
import { runDaemon } from "../daemon/daemon.ts";
import { isSupervised } from "../update/supervised.ts";

export async function run(
  options: { caFile?: string; supervised?: boolean },
  io: Io,
): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", onSignal);
  try {
    return await runDaemon({
      paths: edgePaths(),
      signal: stop.signal,
      caFile: options.caFile,
      supervised: await isSupervised(options.supervised === true),
      log: (message) => io.err(`${new Date().toISOString()} ${message}\n`),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    if (Deno.build.os !== "windows") Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

export function registerRun(edge: Command, { io, setExit }: CliContext): void {
  edge.command("run")
    .description("run the edge daemon in the foreground")
    .addOption(caFileOption())
    .option(
      "--supervised",
      "something restarts the daemon when it exits (NSSM, runit, a container); fleet upgrades need it",
    )
    .action(async (opts) => setExit(await run(opts, io)));
}
