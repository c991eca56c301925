// A fleet upgrade's result on one node. The daemon answers `node.update` after it switched its
// binary, and then exits for its service manager to start the new one: that answer says what
// the host did, not whether the new version works. The controller's own record decides: the node
// is ok when it connects again reporting the new version; it failed when it comes back on the
// old one (the new daemon did not reach Connected in time and rolled back) or not at all.
import type { Queryable } from "../../store/db.ts";
import type { Outcome } from "./confirm.ts";

/** Beyond the host's own connect deadline: its rollback, and the old daemon's restart. */
const ROLLBACK_MARGIN_SECS = 30;
const POLL_MS = 250;

export interface UpdateReply {
  status: "current" | "switched";
  from?: string;
  to?: string;
  version?: string;
  connect_deadline_secs?: number;
}

export function parseUpdateReply(resultJson: string): UpdateReply | undefined {
  try {
    const reply = JSON.parse(resultJson) as UpdateReply;
    return reply.status === "current" || reply.status === "switched" ? reply : undefined;
  } catch {
    return undefined;
  }
}

interface Seen {
  status: string;
  status_since: Date;
  capabilities: { agent_version?: string };
}

/** The host's own default when the request names no connect deadline (daemon_update.ts). */
const DEFAULT_CONNECT_DEADLINE_SECS = 60;

export async function confirmUpgrade(
  db: Queryable,
  nodeId: string,
  reported: Outcome,
  reply: UpdateReply | undefined,
  answeredAt: Date,
  /** The connect deadline the operator asked for (the request's connect_deadline_secs). */
  requestedDeadlineSecs?: number,
  marginSecs = ROLLBACK_MARGIN_SECS,
): Promise<Outcome> {
  if (reported.status !== "ok") return reported;
  if (!reply) {
    return { status: "failed", detail: "the host gave no update result", exitCode: null };
  }
  if (reply.status === "current") {
    return { status: "ok", detail: `already at ${reply.version}`, exitCode: 0 };
  }
  // How long to watch is ours to say, not the host's: a host (or whatever answers for it) that
  // replied with a huge connect_deadline_secs would otherwise hold this node's wave, and so the
  // whole operation, open for as long as it liked. Its own figure counts only when shorter.
  const asked = requestedDeadlineSecs ?? DEFAULT_CONNECT_DEADLINE_SECS;
  const told = reply.connect_deadline_secs;
  const waitSecs = typeof told === "number" && Number.isFinite(told) && told >= 0
    ? Math.min(told, asked)
    : asked;
  const deadline = Date.now() + (waitSecs + marginSecs) * 1000;
  let last: Seen | undefined;
  while (Date.now() < deadline) {
    const rows = await db.query<Seen>(
      `SELECT status, status_since, capabilities FROM edge_daemons WHERE node_id = $1`,
      [nodeId],
    );
    last = rows[0];
    // Only a stream opened after the answer counts: the old daemon's may still be up for a moment.
    const fresh = last?.status === "connected" && new Date(last.status_since) > answeredAt;
    const version = last?.capabilities?.agent_version;
    if (fresh && version === reply.to) {
      return { status: "ok", detail: `upgraded ${reply.from} → ${reply.to}`, exitCode: 0 };
    }
    if (fresh && version === reply.from) {
      return {
        status: "failed",
        detail:
          `rolled back: ${reply.to} did not reach Connected; the host runs ${reply.from} again`,
        exitCode: null,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return {
    status: "timed_out",
    detail: `switched to ${reply.to}, but the host has not reconnected on it (last seen ${
      last?.status ?? "nowhere"
    } on ${last?.capabilities?.agent_version ?? "?"})`,
    exitCode: null,
  };
}
