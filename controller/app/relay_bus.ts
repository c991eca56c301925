// Several relays share one PostgreSQL: a command for a node reaches the relay that holds its
// stream through LISTEN/NOTIFY, and the node's answers come back the same way. Messages name
// the relay they are for; everything else on the channel is ignored. NOTIFY payloads are capped
// at 8000 bytes, so output events are cut into pieces well below that.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type ToolEvent, ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { fromBase64, toBase64 } from "../../shared/crypto/encoding.ts";
import { AegisError } from "../../shared/errors.ts";
import type { Db } from "../store/db.ts";
import type { EdgeHub } from "./edge_sessions.ts";

const CHANNEL = "aegis_edge_bus";
const PIECE = 4096;

type BusMessage =
  | {
    to: string;
    kind: "call";
    from: string;
    call_id: string;
    node_id: string;
    tool: string;
    arguments_json: string;
    deadline_ms: number;
  }
  | { to: string; kind: "cancel"; call_id: string; node_id: string; reason: string }
  | { to: string; kind: "event"; call_id: string; event: string }
  | { to: "*"; kind: "revoked" | "credentials"; node_id: string; overlap_ms: number };

export class RelayBus {
  #stop?: () => Promise<void>;

  constructor(
    private readonly db: Db,
    private readonly hub: EdgeHub,
    readonly relayId: string,
    private readonly log: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    this.#stop = await this.db.listen(CHANNEL, (payload) => {
      try {
        this.#receive(JSON.parse(payload) as BusMessage);
      } catch (error) {
        this.log(`relay bus: dropped a message: ${(error as Error).message}`);
      }
    });
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }

  /** Asks the relay holding the node's stream to run a call; events arrive in hub.calls. */
  async forwardCall(
    relay: string,
    call: { callId: string; nodeId: string; tool: string; argumentsJson: string; deadline: Date },
  ) {
    await this.#send({
      to: relay,
      kind: "call",
      from: this.relayId,
      call_id: call.callId,
      node_id: call.nodeId,
      tool: call.tool,
      arguments_json: call.argumentsJson,
      deadline_ms: call.deadline.getTime(),
    });
  }

  async forwardCancel(relay: string, callId: string, nodeId: string, reason: string) {
    await this.#send({ to: relay, kind: "cancel", call_id: callId, node_id: nodeId, reason });
  }

  /** Tells every relay a node was revoked (drop its stream) or got new credentials. */
  async broadcast(kind: "revoked" | "credentials", nodeId: string, overlapMs = 0) {
    await this.#send({ to: "*", kind, node_id: nodeId, overlap_ms: overlapMs });
  }

  #receive(message: BusMessage): void {
    if (message.to !== this.relayId && message.to !== "*") return;
    switch (message.kind) {
      case "call":
        return this.#runForRemote(message);
      case "cancel":
        this.hub.get(message.node_id)?.send({
          case: "toolCancel",
          value: { callId: message.call_id, reason: message.reason } as never,
        });
        return;
      case "event":
        this.hub.calls.deliverRemote(fromBinary(ToolEventSchema, fromBase64(message.event)));
        return;
      case "revoked":
        this.hub.get(message.node_id)?.fail(
          new AegisError("NODE_REVOKED", `node ${message.node_id} was revoked`),
        );
        return;
      case "credentials":
        this.hub.get(message.node_id)?.credentialsReplaced(message.overlap_ms);
        return;
    }
  }

  /** Runs a call that another relay received for a node whose stream is here. */
  #runForRemote(message: Extract<BusMessage, { kind: "call" }>): void {
    const session = this.hub.get(message.node_id);
    if (!session) {
      void this.#reply(
        message.from,
        create(ToolEventSchema, {
          callId: message.call_id,
          event: {
            case: "refused",
            value: {
              code: "NODE_OFFLINE",
              message: `host ${message.node_id} is not connected to relay ${this.relayId}`,
            },
          },
        }),
      );
      return;
    }
    this.hub.calls.forward(
      message.call_id,
      message.node_id,
      (event) => void this.#reply(message.from, event),
    );
    session.send({
      case: "toolCall",
      value: {
        callId: message.call_id,
        tool: message.tool,
        argumentsJson: message.arguments_json,
        deadline: { seconds: BigInt(Math.floor(message.deadline_ms / 1000)), nanos: 0 },
      } as never,
    });
  }

  async #reply(relay: string, event: ToolEvent): Promise<void> {
    for (const piece of split(event)) {
      await this.#send({
        to: relay,
        kind: "event",
        call_id: event.callId,
        event: toBase64(toBinary(ToolEventSchema, piece)),
      });
    }
  }

  async #send(message: BusMessage): Promise<void> {
    await this.db.notify(CHANNEL, JSON.stringify(message));
  }
}

/** Output chunks larger than a NOTIFY payload allows become several chunks, in order. */
function split(event: ToolEvent): ToolEvent[] {
  const e = event.event;
  if ((e.case !== "stdout" && e.case !== "stderr") || e.value.length <= PIECE) return [event];
  const pieces: ToolEvent[] = [];
  for (let i = 0; i < e.value.length; i += PIECE) {
    pieces.push(
      create(ToolEventSchema, {
        callId: event.callId,
        event: { case: e.case, value: e.value.subarray(i, i + PIECE) },
      }),
    );
  }
  return pieces;
}
