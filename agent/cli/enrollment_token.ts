// `aegis edge token create`: an operator issues a one-time enrollment token. Text output puts the
// token alone on stdout's first line (so `$(…| head -1)` works), then the enroll commands and
// the install one-liners for each OS; `--output json` prints the controller's answer as it is.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { parseDuration } from "../../shared/duration.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";

interface Options extends TargetOptions {
  name?: string;
  tenant?: string;
  ttl?: string;
  hostnamePattern?: string;
  output: string;
}

export interface IssuedToken {
  token: string;
  command: string;
  command_stdin: string;
  expires_at: string;
  tenant_id: string;
  name: string;
  hostname_pattern?: string;
  install?: { linux: string; macos: string; windows: string };
}

export async function tokenCreate(
  options: Options,
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, env));
  const issued = await api.post<IssuedToken>("/v1/edge/enrollment-tokens", {
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.tenant !== undefined ? { tenant_id: options.tenant } : {}),
    ...(options.ttl !== undefined
      ? { ttl_secs: Math.round(parseDuration(options.ttl, "--ttl") / 1000) }
      : {}),
    ...(options.hostnamePattern !== undefined ? { hostname_pattern: options.hostnamePattern } : {}),
  });
  io.out(options.output === "json" ? JSON.stringify(issued, null, 2) + "\n" : render(issued));
  return 0;
}

export function render(issued: IssuedToken): string {
  const lines = [
    issued.token,
    "",
    `tenant     ${issued.tenant_id}${issued.name ? `, host name "${issued.name}"` : ""}`,
    `expires    ${issued.expires_at} (one-time use)`,
    ...(issued.hostname_pattern ? [`hostnames  ${issued.hostname_pattern} only`] : []),
    "",
    "Enroll a host that has aegis:",
    `  ${issued.command}`,
    `  ${issued.command_stdin}   # token kept out of ps`,
  ];
  if (issued.install) {
    lines.push(
      "",
      "Install and enroll in one line:",
      `  linux    ${issued.install.linux}`,
      `  macos    ${issued.install.macos}`,
      `  windows  ${issued.install.windows}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Adds `create` under `aegis edge token` (which also holds the node's own `refresh`). */
export function registerTokenCreate(token: Command, { io, setExit }: CliContext): void {
  token.command("create")
    .description("operator: issue a one-time enrollment token (with install one-liners)")
    .option("--name <name>", "the host's display name")
    .option("--tenant <tenant>", "tenant to enroll into (default: the operator token's)")
    .option("--ttl <duration>", "how long the token is valid (e.g. 15m, 2h)")
    .option(
      "--hostname-pattern <glob>",
      "only a host whose hostname matches may redeem it (e.g. '*.web.example.com')",
    )
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opts) => setExit(await tokenCreate(opts, io)));
}
