// aegis-controller: the controller / relay coordinator binary.
import { Command, Option } from "@commander-js/extra-typings";
import { join } from "node:path";
import { VERSION } from "../shared/version.ts";
import { processIo, reportError } from "../shared/cli/io.ts";
import { runController } from "./cli/run.ts";
import { tokenCreate } from "./cli/token_create.ts";
import { DEFAULT_HEALTH_URL, health } from "./cli/health.ts";

function defaultDataDir(): string {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return Deno.env.get("AEGIS_DATA_DIR") ?? join(home, ".aegis", "controller");
}

function shutdownSignal(): Promise<void> {
  return new Promise((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve());
    if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", () => resolve());
  });
}

export function buildProgram(setExit: (code: number) => void) {
  const program = new Command("aegis-controller")
    .description("AEGIS Edge controller and relay coordinator")
    .version(VERSION)
    .showHelpAfterError();
  const dataDirOption = () =>
    new Option("--data-dir <dir>", "state directory (embedded database, signing key)").default(
      defaultDataDir(),
    );

  program.command("run")
    .description("serve NodeClusterService, health and the REST API on one port")
    .requiredOption("--config <file>", "aegis-config.yaml")
    .addOption(dataDirOption())
    .option("--port <port>", "override cluster.cluster_grpc_port", (v) => Number(v))
    .action(async (opts) => setExit(await runController(opts, processIo, shutdownSignal())));

  const token = program.command("token").description("operator tokens");
  token.command("create")
    .description("print an operator JWT signed by this controller")
    .requiredOption("--config <file>", "aegis-config.yaml")
    .addOption(dataDirOption())
    .requiredOption("--tenant <tenant>", "tenant id the operator acts on")
    .addOption(
      new Option("--role <role>", "operator role").choices(["admin", "operator", "readonly"])
        .default("admin"),
    )
    .option("--subject <name>", "who the token names")
    .option("--tenants <list>", "further tenants, comma separated")
    .option("--ttl <duration>", "lifetime (default 24h; 15m for --login)")
    .option("--login", "print a one-time web console login link instead of a token")
    .option("--url <url>", "the console's base URL in the link (default: the public endpoint)")
    .action(async (opts) => setExit(await tokenCreate(opts, processIo)));

  program.command("health")
    .description("exit 0 when the controller at --url answers SERVING (container HEALTHCHECK)")
    .option("--url <url>", "the controller's base URL", DEFAULT_HEALTH_URL)
    .action(async (opts) => setExit(await health(opts, processIo)));
  return program;
}

if (import.meta.main) {
  let code = 0;
  try {
    await buildProgram((c) => code = c).parseAsync(Deno.args, { from: "user" });
  } catch (error) {
    code = reportError(processIo, error);
  }
  Deno.exit(code);
}
