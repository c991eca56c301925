// `aegis edge status`: the node as the controller sees it; local facts when it cannot be asked.
// The JSON keys are a stable API: node_id, tenant, status, since, endpoint, heartbeat_age
// (seconds, or null), capabilities {os, arch, local_tools}, labels, key_fingerprint, token_expires,
// sandbox {mode, active, detail}: whether this host's tool calls run with ~/.aegis/edge hidden,
// auth {state, detail, token_expires}: whether this node's credentials are good, merged from
//   node.token's own expiry (an expired token is never "ok"), the controller's answer, and what
//   the daemon recorded in state.json; state is one of
//   ok            the controller accepts node.token (just now, or the daemon's last word when the
//                 controller cannot be asked),
//   refreshing    the daemon is renewing the token, or a renewal failed while it is still good,
//   token_expired node.token expired (or the controller says so) and no renewal succeeded yet,
//   refused       the controller refused this node or its token (revoked, key mismatch, …),
//   unknown       the controller cannot be asked and no daemon has recorded anything;
//   detail says why, token_expires is node.token's expiry on this host,
// last_error {message, at} | null: the daemon's last connection error and its time (kept after
//   it reconnects; the newer of state.json's and the one the controller was told in Hello),
// failures: connection attempts failed in a row since the daemon's last stream connected.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AegisError, type ErrorCode } from "../../shared/errors.ts";
import { formatAge } from "../../shared/duration.ts";
import { sealUnary } from "../client/unary.ts";
import type { Io } from "../../shared/cli/io.ts";
import type { Command } from "@commander-js/extra-typings";
import { type CliContext, outputOption } from "./context.ts";
import { edgePaths } from "../state/paths.ts";
import { type Identity, loadIdentity } from "../state/identity.ts";
import { type AuthState, type DaemonState, readDaemonState } from "../daemon/state.ts";
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
  /** Filled in by status(): node.token, the controller's answer and state.json, merged. */
  auth?: StatusAuth;
  last_error?: LastError | null;
  failures?: number;
}

export type StatusAuthState = AuthState | "unknown";

export interface StatusAuth {
  state: StatusAuthState;
  detail: string;
  token_expires: string;
}

export interface LastError {
  message: string;
  at: string | null;
}

/** How asking the controller went. */
export type ControllerAnswer =
  | { kind: "accepted" }
  | { kind: "refused"; code: ErrorCode; message: string }
  | { kind: "unreachable"; message: string };

/** Refusals that are about this node's credentials, not about reaching the controller. */
const AUTH_REFUSALS = new Set<ErrorCode>([
  "NODE_REVOKED",
  "NODE_TOKEN_INVALID",
  "NODE_TOKEN_EXPIRED",
  "KEY_TOKEN_MISMATCH",
  "SIGNATURE_INVALID",
  "CLOCK_SKEW",
]);

export async function status(options: { output?: string }, io: Io): Promise<number> {
  const paths = edgePaths();
  const identity = await loadIdentity(paths);
  const saved = await readDaemonState(paths.state);
  // A state.json of another node (before a re-enrollment) says nothing about this one.
  const daemon = saved?.node_id === identity.claims.sub ? saved : undefined;
  let view: NodeStatus;
  let answer: ControllerAnswer;
  let reported: LastError | null = null;
  try {
    ({ view, reported } = await askController(identity));
    answer = { kind: "accepted" };
  } catch (error) {
    const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
    view = localView(identity, daemon);
    answer = AUTH_REFUSALS.has(aegis.code)
      ? { kind: "refused", code: aegis.code, message: aegis.message }
      : { kind: "unreachable", message: aegis.message };
    if (aegis.code === "NODE_REVOKED") {
      view.status = "Revoked";
      io.err(`! the controller says this node was revoked: ${aegis.message}\n  → ${aegis.hint}\n`);
    } else if (answer.kind === "refused") {
      io.err(
        `! the controller at ${view.endpoint} refused node.token (${aegis.message}); showing what this host knows.\n`,
      );
    } else {
      io.err(
        `! the controller at ${view.endpoint} could not be asked (${aegis.message}); showing what this host knows.\n`,
      );
    }
  }
  view.sandbox = await sandboxView(identity.config.edge.sandbox);
  view.auth = mergeAuth({
    tokenExpires: new Date(identity.claims.exp * 1000),
    now: new Date(),
    controller: answer,
    daemon,
  });
  view.last_error = latestError(daemon, reported);
  view.failures = daemon?.failures ?? 0;
  io.out(options.output === "json" ? JSON.stringify(view, null, 2) + "\n" : renderStatus(view));
  return 0;
}

/**
 * Whether this node's credentials are good. node.token's own expiry is checked first: an expired
 * token is never "ok", whatever anyone said before. Then the controller's answer, which is the
 * truth now; when it cannot be asked, the daemon's last word (stale words are not repeated).
 */
export function mergeAuth(input: {
  tokenExpires: Date;
  now: Date;
  controller: ControllerAnswer;
  daemon?: DaemonState;
}): StatusAuth {
  const { controller, daemon } = input;
  const token_expires = input.tokenExpires.toISOString();
  const result = (state: StatusAuthState, detail: string) => ({ state, detail, token_expires });
  // What the daemon said, when it is more than "the token was fine then".
  const daemonSays = daemon?.auth && daemon.auth !== "ok" && daemon.auth_detail
    ? `; the daemon last said (${daemon.auth}): ${daemon.auth_detail}`
    : "";
  if (controller.kind === "refused" && controller.code === "NODE_REVOKED") {
    return result("refused", `the controller refused this node: ${controller.message}`);
  }
  if (input.tokenExpires.getTime() <= input.now.getTime()) {
    return result(
      "token_expired",
      `node.token expired at ${token_expires}; the daemon renews it with the key once it ` +
        `reaches the controller (or run \`aegis edge token refresh\`)${daemonSays}`,
    );
  }
  if (controller.kind === "refused") {
    if (controller.code === "NODE_TOKEN_EXPIRED") {
      return result(
        "token_expired",
        `the controller says node.token expired (${controller.message}), though it is valid ` +
          `until ${token_expires} by this host's clock: check the clock${daemonSays}`,
      );
    }
    return result("refused", `the controller refused node.token: ${controller.message}`);
  }
  if (controller.kind === "accepted") {
    if (daemon?.auth === "refreshing") return result("refreshing", daemon.auth_detail ?? "");
    return result("ok", `the controller accepted node.token just now; it expires ${token_expires}`);
  }
  const notAsked = `the controller could not be asked now (${controller.message})`;
  if (!daemon?.auth) {
    return result(
      "unknown",
      `${notAsked} and no daemon has recorded the state of this node's credentials`,
    );
  }
  if (daemon.auth === "token_expired") {
    // The token expired then, but the one on disk now is good (renewed since): unconfirmed.
    return result(
      "unknown",
      `${notAsked}; node.token is valid until ${token_expires}${daemonSays}`,
    );
  }
  return result(
    daemon.auth,
    `as of the daemon's last report: ${daemon.auth_detail ?? "-"}; ${notAsked}`,
  );
}

/** The newer of the daemon's own record and what the controller was told in Hello. */
export function latestError(
  daemon: DaemonState | undefined,
  reported: LastError | null,
): LastError | null {
  const local: LastError | null = daemon?.last_error
    ? { message: daemon.last_error, at: daemon.last_error_at ?? null }
    : null;
  if (!local || !reported) return local ?? reported;
  const time = (e: LastError) => (e.at ? Date.parse(e.at) : -Infinity);
  return time(reported) > time(local) ? reported : local;
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

async function askController(
  identity: Identity,
): Promise<{ view: NodeStatus; reported: LastError | null }> {
  // Each endpoint in turn, each with a freshly sealed envelope (the controller accepts one once).
  const { value: r, endpoint } = await callAnyEndpoint(
    identity.endpoints,
    { caFile: identity.config.edge.ca_file, timeoutMs: 5000 },
    (client) => client.describeNode(sealUnary(identity, { case: "describe", value: {} as never })),
  );
  const serverNow = r.serverTime ? timestampDate(r.serverTime).getTime() : Date.now();
  const reported = r.report?.lastError
    ? {
      message: r.report.lastError,
      at: r.report.lastErrorAt ? timestampDate(r.report.lastErrorAt).toISOString() : null,
    }
    : null;
  const view: NodeStatus = {
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
  return { view, reported };
}

function localView(identity: Identity, state: DaemonState | undefined): NodeStatus {
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
  if (s.auth) lines.push(`${"auth:".padEnd(17)}${s.auth.state}: ${s.auth.detail}`);
  if (s.last_error !== undefined) {
    lines.push(`${"last_error:".padEnd(17)}${s.last_error ? renderError(s.last_error) : "-"}`);
  }
  if (s.failures !== undefined) lines.push(`${"failures:".padEnd(17)}${s.failures}`);
  return lines.join("\n") + "\n";
}

/** "2026-04-28T14:32:11.000Z (3m ago): cannot reach …" */
export function renderError(e: LastError, now = Date.now()): string {
  const at = e.at ? Date.parse(e.at) : NaN;
  const when = Number.isNaN(at) ? "at an unknown time" : `${e.at} (${formatAge(now - at)} ago)`;
  return `${when}: ${e.message}`;
}

export function registerStatus(edge: Command, { io, setExit }: CliContext): void {
  edge.command("status")
    .description("this node as the controller sees it")
    .addOption(outputOption())
    .action(async (opts) => setExit(await status(opts, io)));
}
