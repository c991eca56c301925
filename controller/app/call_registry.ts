// Calls in flight on this process, by call id. A call is either waited on here (its events go to
// the caller's queue) or relayed for another relay (its events go back over the bus). A node can
// only answer its own calls.
import { create } from "@bufbuild/protobuf";
import { type ToolEvent, ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AsyncQueue } from "../../shared/async_queue.ts";
import { AegisError } from "../../shared/errors.ts";

interface Pending {
  nodeId: string;
  events?: AsyncQueue<ToolEvent>;
  forward?: (event: ToolEvent) => void;
}

export class CallRegistry {
  readonly #pending = new Map<string, Pending>();

  open(callId: string, nodeId: string): AsyncQueue<ToolEvent> {
    const events = new AsyncQueue<ToolEvent>();
    this.#pending.set(callId, { nodeId, events });
    return events;
  }

  /** Relays a call's events elsewhere until its final event. */
  forward(callId: string, nodeId: string, onEvent: (event: ToolEvent) => void): void {
    this.#pending.set(callId, { nodeId, forward: onEvent });
  }

  /** An event from a node's stream. False for an unknown call or another node's call. */
  deliver(nodeId: string, event: ToolEvent): boolean {
    const pending = this.#pending.get(event.callId);
    if (!pending || pending.nodeId !== nodeId) return false;
    this.#hand(event.callId, pending, event);
    return true;
  }

  /** An event another relay passed on over the bus for a call waited on here. */
  deliverRemote(event: ToolEvent): boolean {
    const pending = this.#pending.get(event.callId);
    if (!pending?.events) return false;
    pending.events.push(event);
    return true;
  }

  close(callId: string): void {
    this.#pending.get(callId)?.events?.close();
    this.#pending.delete(callId);
  }

  /** The node's stream ended: every call waiting on it fails now, not at its deadline. */
  failNode(nodeId: string, reason: string): void {
    for (const [callId, pending] of this.#pending) {
      if (pending.nodeId !== nodeId) continue;
      pending.events?.fail(new AegisError("NODE_OFFLINE", reason));
      pending.forward?.(create(ToolEventSchema, {
        callId,
        event: { case: "refused", value: { code: "NODE_OFFLINE", message: reason } },
      }));
      this.#pending.delete(callId);
    }
  }

  get size(): number {
    return this.#pending.size;
  }

  #hand(callId: string, pending: Pending, event: ToolEvent): void {
    if (pending.events) return void pending.events.push(event);
    pending.forward?.(event);
    const final = event.event.case === "exit" || event.event.case === "refused";
    if (final) this.#pending.delete(callId);
  }
}
