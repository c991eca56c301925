// aegis: the CLI, the edge daemon and the operator's fleet tool, in one binary. Only what the
// command line needs is loaded (agent/cli/entry.ts): the daemon keeps what it loads for as long
// as it runs.
import { processIo, reportError } from "../shared/cli/io.ts";
import { versionLine } from "../shared/release/build_info.ts";
import { loadEverything, loadProgram } from "./cli/entry.ts";

if (import.meta.main) {
  let code = 0;
  // `aegis --version` also says which release key (if any) this build verifies updates with;
  // the first token stays the bare version, which install.sh and the tests read.
  if (Deno.args.length === 1 && (Deno.args[0] === "--version" || Deno.args[0] === "-V")) {
    await loadEverything();
    processIo.out(`${versionLine()}\n`);
    Deno.exit(0);
  }
  const json = Deno.args.includes("--output") &&
    Deno.args[Deno.args.indexOf("--output") + 1] === "json";
  try {
    const buildProgram = await loadProgram(Deno.args);
    await buildProgram(processIo, (c) => code = c).exitOverride().parseAsync(Deno.args, {
      from: "user",
    });
  } catch (error) {
    const commanderExit = (error as { exitCode?: number; code?: string }).code?.startsWith(
      "commander.",
    );
    code = commanderExit
      ? (error as { exitCode: number }).exitCode
      : reportError(processIo, error, json);
  }
  Deno.exit(code);
}
