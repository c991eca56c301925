// `aegis edge approved add | list | remove`: trusted-enrollment patterns kept in the controller's
// database. A host whose hostname matches the pattern and whose source address is in one of the
// networks enrolls into the tenant without a token (`aegis edge enroll --trusted`). The hostname
// is the host's own claim: the networks are the real check.
import type { Command } from "@commander-js/extra-typings";
import type { ApprovedPattern } from "../../shared/approved_pattern.ts";
import type { Io } from "../../shared/cli/io.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";
import { table } from "./hosts.ts";

type Options = TargetOptions & { output: string; tenant?: string };

const api = (options: TargetOptions, env: Record<string, string | undefined>) =>
  new OperatorApi(resolveTarget(options, env));

export async function approvedAdd(
  pattern: string,
  options: Options & { cidr: string[] },
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const added = await api(options, env).post<ApprovedPattern>("/v1/edge/approved-patterns", {
    pattern,
    cidrs: options.cidr,
    ...(options.tenant ? { tenant_id: options.tenant } : {}),
  });
  io.out(
    options.output === "json"
      ? JSON.stringify(added, null, 2) + "\n"
      : `✔ ${added.id}: hosts named ${added.pattern} from ${
        added.cidrs.join(", ")
      } enroll into ${added.tenant_id}\n`,
  );
  return 0;
}

export async function approvedList(
  options: Options,
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const query = options.tenant ? `?tenant_id=${encodeURIComponent(options.tenant)}` : "";
  const { patterns } = await api(options, env).get<{ patterns: ApprovedPattern[] }>(
    `/v1/edge/approved-patterns${query}`,
  );
  if (options.output === "json") {
    io.out(JSON.stringify(patterns, null, 2) + "\n");
    return 0;
  }
  const rows = patterns.map((p) => [
    p.id,
    p.pattern,
    p.cidrs.join(","),
    p.tenant_id,
    p.created_by,
    p.created_at,
  ]);
  io.out(table(["ID", "PATTERN", "CIDRS", "TENANT", "BY", "CREATED"], rows));
  return 0;
}

export async function approvedRemove(
  id: string,
  options: Options,
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const removed = await api(options, env).request(
    `/v1/edge/approved-patterns/${encodeURIComponent(id)}`,
    { method: "DELETE" },
  ).then((r) => r.json() as Promise<ApprovedPattern>);
  io.out(
    options.output === "json"
      ? JSON.stringify(removed, null, 2) + "\n"
      : `✔ removed ${removed.id} (${removed.pattern})\n`,
  );
  return 0;
}

export function registerApproved(edge: Command, { io, setExit }: CliContext): void {
  const approved = edge.command("approved")
    .description("operator: hostname patterns + networks that may enroll without a token");
  approved.command("add")
    .description("approve a hostname glob from source networks (the networks are the real check)")
    .argument("<pattern>", "hostname glob; * stands for part of one label ('*.web.example.com')")
    .requiredOption(
      "--cidr <cidr>",
      "a source network, after the controller's trusted proxies (repeat for more)",
      (value: string, list: string[] = []) => [...list, value],
    )
    .option("--tenant <tenant>", "tenant the hosts enroll into (default: the token's)")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (pattern, opts) => setExit(await approvedAdd(pattern, opts, io)));
  approved.command("list")
    .description("list the approved patterns of your tenants")
    .option("--tenant <tenant>", "one tenant only")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opts) => setExit(await approvedList(opts, io)));
  approved.command("remove")
    .alias("rm")
    .description("remove an approved pattern by id (effective at once)")
    .argument("<id>")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (id, opts) => setExit(await approvedRemove(id, opts, io)));
}
