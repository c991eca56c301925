// Calls that cross relays. The relay a caller reached forwards the call to the relay holding the
// node's stream (RelayPeerService.ForwardCall); that relay runs it like a local call and streams
// the node's events back in order, with HTTP/2 flow control between the two.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ToolEvent, ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import type { DaemonRepository } from "./daemons.ts";
import type { EdgeHub, EdgeSession } from "./edge_sessions.ts";

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
  ) {}

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
    }
  }
}

function refused(call: ForwardedCall, code: string, message: string): ToolEvent {
  return create(ToolEventSchema, {
    callId: call.callId,
    event: { case: "refused", value: { code, message } },
  });
}
