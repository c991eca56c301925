// Calls in flight on this process, by call id: events from a node's stream are delivered to the
// one caller waiting for them. A node can only answer its own calls.
import type { ToolEvent } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AsyncQueue } from "../../shared/async_queue.ts";
import { AegisError } from "../../shared/errors.ts";

interface Pending {
  nodeId: string;
  events: AsyncQueue<ToolEvent>;
}

export class CallRegistry {
  readonly #pending = new Map<string, Pending>();

  open(callId: string, nodeId: string): AsyncQueue<ToolEvent> {
    const events = new AsyncQueue<ToolEvent>();
    this.#pending.set(callId, { nodeId, events });
    return events;
  }

  /** Returns false for an unknown call, or a call that belongs to another node. */
  deliver(nodeId: string, event: ToolEvent): boolean {
    const pending = this.#pending.get(event.callId);
    if (!pending || pending.nodeId !== nodeId) return false;
    pending.events.push(event);
    return true;
  }

  close(callId: string): void {
    this.#pending.get(callId)?.events.close();
    this.#pending.delete(callId);
  }

  /** The node's stream ended: every call waiting on it fails now, not at its deadline. */
  failNode(nodeId: string, reason: string): void {
    for (const [callId, pending] of this.#pending) {
      if (pending.nodeId !== nodeId) continue;
      pending.events.fail(new AegisError("NODE_OFFLINE", reason));
      this.#pending.delete(callId);
    }
  }

  get size(): number {
    return this.#pending.size;
  }
}
