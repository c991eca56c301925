// Calls that cross relays. The relay a caller reached forwards the call to the relay holding the
// node's stream (RelayPeerService.ForwardCall); that relay runs it like a local call and streams
// the node's events back in order, with HTTP/2 flow control between the two.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ToolEvent, ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { DaemonRepository } from "./daemons.ts";
import type { EdgeHub, EdgeSession } from "./edge_sessions.ts";
import { RELAY_TOKEN_LEEWAY_SECS, type RelayGrant } from "./relay_tokens.ts";

/** How long a forwarded call's id stays spent: past any token for it (15 s + leeway). */
export const RELAY_REPLAY_TTL_MS = 30_000;

export interface ForwardedCall {
  callId: string;
  nodeId: string;
  tool: string;
  argumentsJson: string;
  deadline: Date;
}

/** The caller's side: reaches the relay `relayId` and streams a call's events from it. */
export interface RelayPeerLink {
  forward(relayId: string, call: ForwardedCall, signal: AbortSignal): AsyncIterable<ToolEvent>;
}

/** Sends a call down a node's stream on this process. */
export function sendCall(session: EdgeSession, call: ForwardedCall): void {
  session.send({
    case: "toolCall",
    value: {
      callId: call.callId,
      tool: call.tool,
      argumentsJson: call.argumentsJson,
      deadline: timestampFromDate(call.deadline),
    } as never,
  });
}

export function sendCancel(session: EdgeSession, callId: string, reason: string): void {
  session.send({ case: "toolCancel", value: { callId, reason } as never });
}

export function isFinal(event: ToolEvent): boolean {
  return event.event.case === "exit" || event.event.case === "refused";
}

/** The serving side: runs calls another relay forwards for nodes whose streams are here. */
export class PeerCallService {
  constructor(
    private readonly hub: EdgeHub,
    private readonly daemons: DaemonRepository,
    private readonly relayId: string,
    private readonly db: Queryable,
    private readonly clock: Clock,
  ) {}

  /**
   * A verified relay token is not enough: the calling relay must have recorded the call (in
   * tool_calls, as running, for this node and tool, requested through it), and a call is
   * forwarded once. So a forward nobody recorded is refused, and a token seen on the wire cannot
   * be used again, for this call or any other.
   */
  async authorize(call: ForwardedCall, grant: RelayGrant): Promise<void> {
    const rows = await this.db.query<
      { node_id: string; tool: string; relay_id: string | null; status: string }
    >(
      "SELECT node_id, tool, relay_id, status FROM tool_calls WHERE call_id = $1",
      [call.callId],
    );
    const row = rows[0];
    if (
      !row || row.status !== "running" || row.node_id !== call.nodeId || row.tool !== call.tool ||
      row.relay_id !== grant.caller || grant.caller === this.relayId
    ) {
      throw new AegisError(
        "FORBIDDEN",
        `relay ${grant.caller} has no running call ${call.callId} of ${call.tool} ` +
          `on host ${call.nodeId} on record; nothing was run`,
      );
    }
    const now = this.clock().getTime();
    const spent = await this.db.query(
      `INSERT INTO used_nonces (nonce, node_id, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (nonce) DO NOTHING RETURNING nonce`,
      [
        `relay-call:${call.callId}`,
        call.nodeId,
        // Past the last moment any relay (whose clock may be off by the leeway) accepts it.
        new Date(Math.max(
          now + RELAY_REPLAY_TTL_MS,
          grant.usableUntil.getTime() + 2 * RELAY_TOKEN_LEEWAY_SECS * 1000,
        )),
      ],
    );
    if (spent.length === 0) {
      throw new AegisError(
        "REPLAYED",
        `call ${call.callId} was already forwarded once (replayed relay token); nothing was run`,
      );
    }
  }

  async *run(call: ForwardedCall, signal: AbortSignal): AsyncGenerator<ToolEvent> {
    const session = this.hub.get(call.nodeId);
    if (!session) {
      yield refused(
        call,
        "NODE_OFFLINE",
        `host ${call.nodeId} is not connected to relay ${this.relayId}`,
      );
      return;
    }
    const host = await this.daemons.get(call.nodeId);
    if (!host || host.status === "revoked") {
      throw new AegisError("NODE_REVOKED", `host ${call.nodeId} was revoked`);
    }
    const events = this.hub.calls.open(
      call.callId,
      call.nodeId,
      (reason) => sendCancel(session, call.callId, reason),
    );
    const onAbort = () => events.fail(new AegisError("ABORTED", "the calling relay went away"));
    signal.addEventListener("abort", onAbort, { once: true });
    let final = false;
    try {
      sendCall(session, call);
      for await (const event of events) {
        yield event;
        if (isFinal(event)) {
          final = true;
          return;
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.hub.calls.close(call.callId);
      if (!final) sendCancel(session, call.callId, "the call ended before the host finished it");
      if (!final && signal.aborted) await this.#callerGone(call.callId);
    }
  }

  /**
   * The calling relay stopped reading the call. Its record is the caller's to finish, and a
   * caller that is alive does (cancelled, timed out, …; that write is unconditional, so it wins
   * whatever the order). A caller that died never will: without this the host's history would
   * show the call running forever. So it is ended here, only if still running.
   */
  async #callerGone(callId: string): Promise<void> {
    await this.db.query(
      `UPDATE tool_calls SET status = 'interrupted', finished_at = $2,
              error = 'the relay the call came through went away; the host was told to stop it'
         WHERE call_id = $1 AND status = 'running'`,
      [callId, this.clock()],
    ).catch(() => {}); // best effort: the registry sweep ends it when the caller's row goes stale
  }
}

function refused(call: ForwardedCall, code: string, message: string): ToolEvent {
  return create(ToolEventSchema, {
    callId: call.callId,
    event: { case: "refused", value: { code, message } },
  });
}
