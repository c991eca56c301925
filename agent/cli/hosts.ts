// `aegis edge hosts list | show`: the operator's view of a tenant's edge hosts. `show --output
// json` prints the REST answer as it is; besides the host's record it has auth {state, detail,
// token_expires} (the controller's view of the node's current token: ok | token_expired |
// revoked), last_error {message, at} | null and connect_failures (what the daemon reported in its
// last Hello: its last connection error, when, and the attempts that failed before it).
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { formatAge } from "../../shared/duration.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";
import { renderError } from "./status.ts";

export interface HostView {
  node_id: string;
  name: string;
  tenant: string;
  status: string;
  since: string;
  heartbeat_age: number | null;
  endpoint: string;
  capabilities: {
    os?: string;
    arch?: string;
    local_tools?: string[];
    hostname?: string;
    agent_version?: string;
  };
  labels: Record<string, string>;
  tags: string[];
  key_fingerprint: string;
  token_expires: string | null;
  reconnects: number;
  /** Absent from controllers older than these fields. */
  auth?: { state: string; detail: string; token_expires: string | null };
  last_error?: { message: string; at: string | null } | null;
  connect_failures?: number;
  /** In lists: the version the host reported, and whether it runs behind the served release. */
  agent_version?: string | null;
  behind_release?: boolean | null;
}

interface HistoryEntry {
  call_id: string;
  summary: string;
  requested_by: string;
  status: string;
  exit_code: number | null;
  started_at: string;
  duration_ms: number | null;
  error: string | null;
}

type Options = TargetOptions & { output: string; tenant?: string };

export async function hostsList(options: Options, io: Io): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const query = options.tenant ? `?tenant_id=${encodeURIComponent(options.tenant)}` : "";
  const { hosts, release } = await api.get<
    { hosts: HostView[]; release?: { version: string } | null }
  >(`/v1/edge/hosts${query}`);
  if (options.output === "json") {
    io.out(JSON.stringify(hosts.map(listEntry), null, 2) + "\n");
    return 0;
  }
  const version = (h: HostView) => {
    const v = h.agent_version ?? h.capabilities.agent_version ?? "?";
    return h.behind_release ? `${v} (behind)` : v;
  };
  const rows = hosts.map((h) => [
    h.node_id,
    h.name,
    h.tenant,
    h.status,
    h.since,
    h.heartbeat_age === null ? "-" : formatAge(h.heartbeat_age * 1000),
    h.tags.join(",") || "-",
    Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-",
    `${h.capabilities.os ?? "?"}/${h.capabilities.arch ?? "?"}`,
    version(h),
  ]);
  io.out(
    table([
      "NODE_ID",
      "NAME",
      "TENANT",
      "STATUS",
      "SINCE",
      "HEARTBEAT",
      "TAGS",
      "LABELS",
      "OS/ARCH",
      "VERSION",
    ], rows),
  );
  const behind = hosts.filter((h) => h.behind_release).length;
  if (release && behind > 0) {
    io.err(
      `${behind} host(s) behind the served release ${release.version}: ` +
        "aegis edge fleet upgrade --target … updates them\n",
    );
  }
  return 0;
}

export async function hostsShow(nodeId: string, options: Options, io: Io): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const host = await api.get<HostView & { history: HistoryEntry[] }>(
    `/v1/edge/hosts/${encodeURIComponent(nodeId)}`,
  );
  if (options.output === "json") {
    io.out(JSON.stringify(host, null, 2) + "\n");
    return 0;
  }
  const caps = host.capabilities;
  const lines = [
    `node_id:         ${host.node_id}`,
    `name:            ${host.name}`,
    `tenant:          ${host.tenant}`,
    `status:          ${host.status} since ${host.since} (${host.reconnects} reconnects)`,
    `heartbeat_age:   ${host.heartbeat_age === null ? "-" : formatAge(host.heartbeat_age * 1000)}`,
    `endpoint:        ${host.endpoint}`,
    `key_fingerprint: ${host.key_fingerprint}`,
    `token_expires:   ${host.token_expires ?? "-"}`,
    ...(host.auth ? [`auth:            ${host.auth.state}: ${host.auth.detail}`] : []),
    ...(host.last_error !== undefined
      ? [`last_error:      ${host.last_error ? renderError(host.last_error) : "-"}`]
      : []),
    ...(host.connect_failures !== undefined
      ? [`failures:        ${host.connect_failures} before its last connect`]
      : []),
    `version:         ${caps.agent_version ?? "?"}`,
    "capabilities:",
    `  os/arch:       ${caps.os ?? "?"}/${caps.arch ?? "?"}${
      caps.hostname ? ` (${caps.hostname})` : ""
    }`,
    `  local_tools:   [${(caps.local_tools ?? []).join(", ")}]`,
    `labels:          { ${Object.entries(host.labels).map(([k, v]) => `${k}: ${v}`).join(", ")} }`,
    `tags:            [${host.tags.join(", ")}]`,
    "recent commands:",
  ];
  if (host.history.length === 0) lines.push("  (none)");
  const rows = host.history.map((h) => [
    h.started_at,
    h.requested_by,
    h.status + (h.exit_code === null ? "" : ` (${h.exit_code})`),
    h.duration_ms === null ? "-" : `${h.duration_ms}ms`,
    h.summary,
  ]);
  io.out(
    lines.join("\n") + "\n" +
      (rows.length ? indent(table(["WHEN", "WHO", "RESULT", "TOOK", "COMMAND"], rows)) : ""),
  );
  return 0;
}

/** The stable shape of `hosts list --output json`. */
function listEntry(h: HostView) {
  return {
    node_id: h.node_id,
    name: h.name,
    tenant: h.tenant,
    status: h.status,
    since: h.since,
    heartbeat_age: h.heartbeat_age,
    tags: h.tags,
    labels: h.labels,
    os: h.capabilities.os ?? null,
    arch: h.capabilities.arch ?? null,
    agent_version: h.agent_version ?? h.capabilities.agent_version ?? null,
    /** null when the controller serves no release or the host's version is unknown. */
    behind_release: h.behind_release ?? null,
  };
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

function indent(text: string): string {
  return text.split("\n").map((l) => (l ? `  ${l}` : l)).join("\n");
}

export function registerHosts(edge: Command, { io, setExit }: CliContext): void {
  const hosts = edge.command("hosts").description("the edge hosts of your tenant");
  hosts.command("list")
    .description("list hosts with their status")
    .option("--tenant <tenant>", "a tenant other than your token's own")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (opts) => setExit(await hostsList(opts, io)));
  hosts.command("show")
    .description("one host: capabilities, labels, tags and recent commands")
    .argument("<node-id>")
    .addOption(outputOption())
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (nodeId, opts) => setExit(await hostsShow(nodeId, opts, io)));
}
