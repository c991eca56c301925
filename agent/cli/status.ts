// `aegis edge status`: the node as the controller sees it; local facts when it cannot be asked.
// The JSON keys are a stable API: node_id, tenant, status, since, endpoint, heartbeat_age
// (seconds, or null), capabilities {os, arch, local_tools}, labels, key_fingerprint, token_expires,
// sandbox {mode, active, detail}: whether this host's tool calls run with ~/.aegis/edge hidden.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AegisError } from "../../shared/errors.ts";
import { formatAge } from "../../shared/duration.ts";
import { sealUnary } from "../client/unary.ts";
import type { Io } from "../../shared/cli/io.ts";
import type { Command } from "@commander-js/extra-typings";
import { type CliContext, outputOption } from "./context.ts";
import { edgePaths } from "../state/paths.ts";
import { type Identity, loadIdentity } from "../state/identity.ts";
import { readDaemonState } from "../daemon/state.ts";
import { sandboxStatus } from "../tools/sandbox.ts";
import type { SandboxMode } from "../../shared/config/edge_config.ts";
import { callAnyEndpoint } from "../client/failover.ts";

export interface NodeStatus {
  node_id: string;
  tenant: string;
  status: "Connected" | "Disconnected" | "Revoked" | "Pending";
  since: string | null;
  endpoint: string;
  heartbeat_age: number | null;
  capabilities: { os: string; arch: string; local_tools: string[] };
  labels: Record<string, string>;
  key_fingerprint: string;
  token_expires: string;
  /** Filled in by status() from a local probe, whichever view the rest comes from. */
  sandbox?: { mode: SandboxMode; active: boolean; detail: string };
}

export async function status(options: { output?: string }, io: Io): Promise<number> {
  const paths = edgePaths();
  const identity = await loadIdentity(paths);
  let view: NodeStatus;
  try {
    view = await askController(identity);
  } catch (error) {
    const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
    view = await localView(identity, paths.state);
    if (aegis.code === "NODE_REVOKED") {
      view.status = "Revoked";
      io.err(`! the controller says this node was revoked: ${aegis.message}\n  → ${aegis.hint}\n`);
    } else {
      io.err(
        `! the controller at ${view.endpoint} could not be asked (${aegis.message}); showing what this host knows.\n`,
      );
    }
  }
  view.sandbox = await sandboxView(identity.config.edge.sandbox);
  io.out(options.output === "json" ? JSON.stringify(view, null, 2) + "\n" : renderStatus(view));
  return 0;
}

/** Probed here, in the same user's environment the daemon runs in. */
async function sandboxView(mode: SandboxMode): Promise<NonNullable<NodeStatus["sandbox"]>> {
  if (mode === "off") {
    return { mode, active: false, detail: "edge.sandbox is off: calls can read ~/.aegis/edge" };
  }
  const s = await sandboxStatus();
  const consequence = mode === "required" ? "every cmd.run is refused" : "calls run unsandboxed";
  return {
    mode,
    active: s.available,
    detail: s.available ? s.detail : `${s.detail}; ${consequence}`,
  };
}

async function askController(identity: Identity): Promise<NodeStatus> {
  // Each endpoint in turn, each with a freshly sealed envelope (the controller accepts one once).
  const { value: r, endpoint } = await callAnyEndpoint(
    identity.endpoints,
    { caFile: identity.config.edge.ca_file, timeoutMs: 5000 },
    (client) => client.describeNode(sealUnary(identity, { case: "describe", value: {} as never })),
  );
  const serverNow = r.serverTime ? timestampDate(r.serverTime).getTime() : Date.now();
  return {
    node_id: r.nodeId,
    tenant: r.tenantId,
    status: r.status as NodeStatus["status"],
    since: r.since ? timestampDate(r.since).toISOString() : null,
    endpoint: endpoint.display,
    heartbeat_age: r.lastHeartbeatAt
      ? Math.max(0, Math.round((serverNow - timestampDate(r.lastHeartbeatAt).getTime()) / 1000))
      : null,
    capabilities: {
      os: r.capabilities?.os ?? "",
      arch: r.capabilities?.arch ?? "",
      local_tools: r.capabilities?.localTools ?? [],
    },
    labels: { ...r.labels },
    key_fingerprint: r.keyFingerprint,
    token_expires: r.tokenExpiresAt ? timestampDate(r.tokenExpiresAt).toISOString() : "",
  };
}

async function localView(identity: Identity, statePath: string): Promise<NodeStatus> {
  const state = await readDaemonState(statePath);
  const lastAck = state?.last_heartbeat_ack_at
    ? Date.parse(state.last_heartbeat_ack_at)
    : undefined;
  return {
    node_id: identity.claims.sub,
    tenant: identity.claims.tenant_id,
    status: "Disconnected",
    since: state?.status === "connected" ? null : state?.since ?? null,
    endpoint: identity.endpoints[0].display,
    heartbeat_age: lastAck ? Math.round((Date.now() - lastAck) / 1000) : null,
    capabilities: {
      os: Deno.build.os,
      arch: Deno.build.arch,
      local_tools: identity.config.local_tools,
    },
    labels: identity.config.node.labels,
    key_fingerprint: identity.fingerprint,
    token_expires: new Date(identity.claims.exp * 1000).toISOString(),
  };
}

export function renderStatus(s: NodeStatus): string {
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}: ${v}`).join(", ");
  const rows: [string, string][] = [
    ["node_id", s.node_id],
    ["tenant", s.tenant],
    ["status", s.status],
    ["since", s.since ?? "-"],
    ["endpoint", s.endpoint],
    ["heartbeat_age", s.heartbeat_age === null ? "-" : formatAge(s.heartbeat_age * 1000)],
  ];
  const lines = rows.map(([k, v]) => `${(k + ":").padEnd(17)}${v}`);
  lines.push(
    "capabilities:",
    `  ${"os:".padEnd(15)}${s.capabilities.os}`,
    `  ${"arch:".padEnd(15)}${s.capabilities.arch}`,
    `  ${"local_tools:".padEnd(15)}[${s.capabilities.local_tools.join(", ")}]`,
    `  ${"labels:".padEnd(15)}{ ${labels} }`,
    `${"key_fingerprint:".padEnd(17)}${s.key_fingerprint}`,
    `${"token_expires:".padEnd(17)}${s.token_expires}`,
  );
  if (s.sandbox) {
    const { active, mode, detail } = s.sandbox;
    lines.push(`${"sandbox:".padEnd(17)}${active ? "on" : "OFF"} (${mode}): ${detail}`);
  }
  return lines.join("\n") + "\n";
}

export function registerStatus(edge: Command, { io, setExit }: CliContext): void {
  edge.command("status")
    .description("this node as the controller sees it")
    .addOption(outputOption())
    .action(async (opts) => setExit(await status(opts, io)));
}
