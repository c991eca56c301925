// `aegis edge logout`: the host leaves for good. The controller marks it Revoked, blacklists its
// token and drops its stream; then the service and the local identity go. When the controller
// cannot be reached the local clean-up still happens, and the output says what is left to do.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { AegisError } from "../../shared/errors.ts";
import { displayPath, edgePaths, homeDir } from "../state/paths.ts";
import { type Identity, loadIdentity } from "../state/identity.ts";
import { callAnyEndpoint } from "../client/failover.ts";
import { sealUnary } from "../client/unary.ts";
import { uninstallService } from "../service/mod.ts";
import { serviceContext } from "./service_step.ts";
import type { CliContext } from "./context.ts";
import { identityFiles } from "./logout_files.ts";

export async function logout(options: { purge?: boolean }, io: Io): Promise<number> {
  const env = Deno.env.toObject();
  const home = homeDir(env);
  const paths = edgePaths(home);
  const identity = await loadIdentity(paths).catch((error) => {
    io.err(`! no usable identity (${(error as Error).message}); cleaning up locally only\n`);
    return undefined;
  });

  let revokedCentrally = false;
  if (identity) revokedCentrally = await deregister(identity, io);

  const service = await uninstallService(serviceContext(home, env));
  if (service.action === "removed") io.out(`✔ Removed ${service.path ?? service.unitName}\n`);
  for (const line of service.instructions) io.out(`  ${line}\n`);

  const targets = options.purge ? [paths.dir] : await identityFiles(paths);
  const removed: string[] = [];
  for (const path of targets) {
    try {
      await Deno.remove(path, { recursive: true });
      removed.push(displayPath(path, home));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  io.out(
    removed.length
      ? `✔ Removed ${removed.join(", ")}\n`
      : "✔ No local identity was left to remove\n",
  );
  if (!options.purge) {
    io.out(
      `  Kept ${displayPath(paths.config, home)} and ${
        displayPath(paths.secrets, home)
      }/ (--purge removes them too)\n`,
    );
  }
  if (identity && !revokedCentrally) {
    io.out(
      `! Node ${identity.claims.sub} is still enrolled on the controller. From an operator workstation run:\n` +
        `    aegis edge keys revoke-remote ${identity.claims.sub}\n`,
    );
    return 69;
  }
  return 0;
}

async function deregister(identity: Identity, io: Io): Promise<boolean> {
  const endpoints = identity.endpoints.map((e) => e.display).join(", ");
  try {
    const { endpoint } = await callAnyEndpoint(
      identity.endpoints,
      { caFile: identity.config.edge.ca_file, timeoutMs: 5000 },
      (client) =>
        client.deregisterNode(sealUnary(identity, { case: "deregister", value: {} as never })),
    );
    io.out(`✔ Revoked node ${identity.claims.sub} on ${endpoint.display}\n`);
    return true;
  } catch (error) {
    const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
    if (aegis.code === "NODE_REVOKED") {
      io.out(`✔ Node ${identity.claims.sub} was already revoked\n`);
      return true;
    }
    io.err(`! could not tell the controller at ${endpoints}: ${aegis.message}\n`);
    return false;
  }
}

export function registerLogout(edge: Command, { io, setExit }: CliContext): void {
  edge.command("logout")
    .description("revoke this host on the controller, remove the service and the local identity")
    .option("--purge", "also remove the config and the local secrets store")
    .action(async (opts) => setExit(await logout(opts, io)));
}
