// `aegis edge keys rotate | revoke-remote` and `aegis edge token refresh`.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { parseDuration } from "../../shared/duration.ts";
import { edgePaths } from "../state/paths.ts";
import { finishPendingRotation, rotateKey } from "../keys/rotate.ts";
import { DEFAULT_KEEP_OLD_MS } from "../keys/swap.ts";
import { refreshToken } from "../keys/refresh.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";
import { registerTokenCreate } from "./enrollment_token.ts";

export async function keysRotate(
  options: { keepOld: string; output: string },
  io: Io,
): Promise<number> {
  const keepOldMs = parseDuration(options.keepOld, "--keep-old");
  const result = await rotateKey(edgePaths(), keepOldMs);
  if (options.output === "json") {
    io.out(
      JSON.stringify(
        {
          node_id: result.nodeId,
          old_key_fingerprint: result.oldFingerprint,
          key_fingerprint: result.newFingerprint,
          token_expires: result.tokenExpires.toISOString(),
          resumed: result.resumed,
        },
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  io.out(
    [
      `✔ Rotated the key of node ${result.nodeId}${
        result.resumed ? " (finished an interrupted rotation)" : ""
      }`,
      `  old  ${result.oldFingerprint}  (archived for ${options.keepOld})`,
      `  new  ${result.newFingerprint}`,
      `  token expires ${result.tokenExpires.toISOString()}`,
      "  A running daemon switches to the new key at its next heartbeat.",
    ].join("\n") + "\n",
  );
  return 0;
}

export async function tokenRefresh(options: { output: string }, io: Io): Promise<number> {
  // A rotation cut short leaves the controller on the new key: finish it, then refresh with it.
  const finished = await finishPendingRotation(edgePaths(), DEFAULT_KEEP_OLD_MS);
  if (finished) io.err(`✔ Finished an interrupted key rotation: now ${finished.newFingerprint}\n`);
  const result = await refreshToken(edgePaths());
  io.out(
    options.output === "json"
      ? JSON.stringify(
        { node_id: result.nodeId, token_expires: result.expires.toISOString() },
        null,
        2,
      ) + "\n"
      : `✔ New token for node ${result.nodeId}, expires ${result.expires.toISOString()}; the old one is revoked\n`,
  );
  return 0;
}

export async function revokeRemote(
  nodeId: string,
  options: TargetOptions,
  io: Io,
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const result = await api.post<{ node_id: string; revoked: boolean }>(
    `/v1/edge/hosts/${encodeURIComponent(nodeId)}/revoke`,
    {},
  );
  io.out(
    result.revoked
      ? `✔ Revoked ${result.node_id}: its token is blacklisted and its stream dropped\n`
      : `✔ ${result.node_id} was already revoked\n`,
  );
  return 0;
}

export function registerKeys(edge: Command, { io, setExit }: CliContext): void {
  const keys = edge.command("keys").description(
    "the node key: rotate it, or revoke a host remotely",
  );
  keys.command("rotate")
    .description("replace this host's key (dual-signed; the live stream stays up)")
    .option(
      "--keep-old <duration>",
      "keep the replaced key in ~/.aegis/edge/archive this long",
      "24h",
    )
    .addOption(outputOption())
    .action(async (opts) => setExit(await keysRotate(opts, io)));
  keys.command("revoke-remote")
    .description("operator: revoke a host (Revoked, token blacklisted, stream dropped)")
    .argument("<node-id>")
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (nodeId, opts) => setExit(await revokeRemote(nodeId, opts, io)));

  const token = edge.command("token").description("the node security token");
  token.command("refresh")
    .description("re-attest with the existing key for a fresh token (the old one is revoked)")
    .addOption(outputOption())
    .action(async (opts) => setExit(await tokenRefresh(opts, io)));
  registerTokenCreate(token, { io, setExit });
}
