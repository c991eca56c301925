// Calls in flight on this process whose node stream is here, by call id: each has a queue its
// events go to, read by the caller here or by a peer relay's ForwardCall. A node can only answer
// its own calls. Queues are bounded in bytes: a node that outruns its reader waits (its stream is
// read no further) up to a stall limit, then the call is cut off and the node told to stop.
import { toBinary } from "@bufbuild/protobuf";
import { type ToolEvent, ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { BoundedQueue } from "../../shared/bounded_queue.ts";
import { AegisError, type ErrorCode } from "../../shared/errors.ts";

export interface CallLimits {
  /** Output bytes buffered per call between the node and its reader. */
  maxBufferedBytes: number;
  /** How long a node's event may wait for room before the call is cut off. */
  stallMs: number;
  /** Calls in flight on this process. */
  maxCalls: number;
}

export const DEFAULT_CALL_LIMITS: CallLimits = {
  maxBufferedBytes: 8 * 1024 * 1024,
  stallMs: 10_000,
  maxCalls: 10_000,
};

interface Pending {
  nodeId: string;
  events: BoundedQueue<ToolEvent>;
}

export class CallRegistry {
  readonly #pending = new Map<string, Pending>();
  limits: CallLimits = DEFAULT_CALL_LIMITS;

  /**
   * Registers a call before it is sent down the node's stream. `stop` tells the node to stop the
   * call's work; it runs when the call is cut off for a reader that does not keep up.
   */
  open(callId: string, nodeId: string, stop: (reason: string) => void): BoundedQueue<ToolEvent> {
    if (this.#pending.has(callId)) throw new AegisError("CONFLICT", `call ${callId} is running`);
    if (this.#pending.size >= this.limits.maxCalls) {
      throw new AegisError(
        "RATE_LIMITED",
        `this relay already runs ${this.limits.maxCalls} calls; try again shortly`,
      );
    }
    const events = callQueue(this.limits, () => stop("the caller did not keep up with the output"));
    this.#pending.set(callId, { nodeId, events });
    return events;
  }

  /**
   * An event from a node's stream. Resolves once it is queued, so the stream is read no faster
   * than the call's reader takes output. False for an unknown call or another node's call.
   */
  async deliver(nodeId: string, event: ToolEvent): Promise<boolean> {
    const pending = this.#pending.get(event.callId);
    if (!pending || pending.nodeId !== nodeId) return false;
    return await pending.events.put(ownBytes(event));
  }

  /** Whether someone here waits for this call of this node. */
  has(callId: string, nodeId: string): boolean {
    return this.#pending.get(callId)?.nodeId === nodeId;
  }

  /** The call is over (whatever way): forget it. Always called by whoever opened it. */
  close(callId: string): void {
    this.#pending.get(callId)?.events.close();
    this.#pending.delete(callId);
  }

  /** The node's stream ended: every call waiting on it fails now, not at its deadline. */
  failNode(nodeId: string, reason: string, code: ErrorCode = "NODE_OFFLINE"): void {
    for (const [callId, pending] of this.#pending) {
      if (pending.nodeId !== nodeId) continue;
      pending.events.fail(new AegisError(code, reason));
      this.#pending.delete(callId);
    }
  }

  get size(): number {
    return this.#pending.size;
  }
}

/** A call's event queue: bounded in output bytes; a stalled producer cuts the call off. */
export function callQueue(limits: CallLimits, onCutOff: () => void): BoundedQueue<ToolEvent> {
  return new BoundedQueue<ToolEvent>({
    maxBytes: limits.maxBufferedBytes,
    stallMs: limits.stallMs,
    sizeOf: eventBytes,
    onStall: () => {
      onCutOff();
      return new AegisError(
        "OUTPUT_LIMIT",
        `the caller read the output too slowly: more than ${limits.maxBufferedBytes} bytes ` +
          `waited over ${limits.stallMs} ms, so the call was stopped`,
        { details: { reason: "slow_reader" } },
      );
    },
  });
}

/** Per-event bookkeeping the queue does not see (the object, its fields, the queue slot). */
const EVENT_OVERHEAD_BYTES = 64;
const sizes = new WeakMap<ToolEvent, number>();

/**
 * What an event holds, by its encoded length: every field counts, unknown fields included (they
 * are dropped when a node's payload is decoded, but an event from anywhere is sized the same).
 * Output events, the bulk, are sized without copying them; the size is computed once per event.
 */
export function eventBytes(event: ToolEvent): number {
  const known = sizes.get(event);
  if (known !== undefined) return known;
  const e = event.event;
  let size: number;
  if ((e.case === "stdout" || e.case === "stderr") && noUnknown(event)) {
    size = e.value.byteLength + event.callId.length * 3 + EVENT_OVERHEAD_BYTES;
  } else {
    size = toBinary(ToolEventSchema, event).byteLength + EVENT_OVERHEAD_BYTES;
  }
  sizes.set(event, size);
  return size;
}

/**
 * Output decoded from a node's message is a view into that message's whole buffer: a one-byte
 * chunk could keep a megabyte of padding alive while counting as one byte. Such output is copied
 * out, so what a queue holds is what it counts.
 */
function ownBytes(event: ToolEvent): ToolEvent {
  const e = event.event;
  if (e.case !== "stdout" && e.case !== "stderr") return event;
  if (e.value.buffer.byteLength <= 2 * e.value.byteLength + 64 * 1024) return event;
  e.value = e.value.slice();
  return event;
}

function noUnknown(event: ToolEvent): boolean {
  return !(event as { $unknown?: unknown[] }).$unknown?.length;
}
