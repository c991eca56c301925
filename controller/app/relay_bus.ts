// Several relays share one PostgreSQL: small control signals (a node was revoked, its credentials
// changed) reach every relay through LISTEN/NOTIFY. Call data never travels here: NOTIFY payloads
// are capped at 8000 bytes and concurrent NOTIFYs do not keep order, so calls go relay to relay
// over RelayPeerService (see peer_calls.ts).
import { AegisError } from "../../shared/errors.ts";
import type { Db } from "../store/db.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import { Coalescer } from "./fleet/coalesce.ts";

const CHANNEL = "aegis_edge_bus";

/** NOTIFY payloads are capped at 8000 bytes; a message of several nodes stays well below. */
export const MAX_PAYLOAD_BYTES = 6000;

/**
 * One node (`node_id`, what every relay understands) or several (`node_ids`, credentials only:
 * a fleet rotation replaces the credentials of thousands of nodes, and one NOTIFY per node was
 * a statement per rotation on top of the rotation's own).
 */
type BusMessage = {
  to: "*";
  kind: "revoked" | "credentials";
  node_id?: string;
  node_ids?: string[];
  overlap_ms: number;
} | {
  to: "*";
  /** Executions cancelled by a caller on another relay: abort their work here. */
  kind: "cancel";
  execution_ids: string[];
};

type Replaced = { nodeId: string; overlapMs: number };

export class RelayBus {
  #stop?: () => Promise<void>;
  /**
   * Credentials changes waiting while a NOTIFY is in flight go together in the next one; each
   * broadcast still resolves only once its own NOTIFY was sent, as before.
   */
  readonly #credentials = new Coalescer<Replaced, void>(async (items) => {
    const byOverlap = new Map<number, string[]>();
    for (const { nodeId, overlapMs } of items) {
      byOverlap.set(overlapMs, [...(byOverlap.get(overlapMs) ?? []), nodeId]);
    }
    for (const [overlapMs, nodeIds] of byOverlap) {
      for (const chunk of chunksUnder(nodeIds, MAX_PAYLOAD_BYTES)) {
        await this.#send(
          chunk.length === 1
            ? { to: "*", kind: "credentials", node_id: chunk[0], overlap_ms: overlapMs }
            : { to: "*", kind: "credentials", node_ids: chunk, overlap_ms: overlapMs },
        );
      }
    }
    return items.map(() => {});
  });

  constructor(
    private readonly db: Db,
    private readonly hub: EdgeHub,
    readonly relayId: string,
    private readonly log: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    this.#stop = await this.db.listen(
      CHANNEL,
      (payload) => {
        try {
          this.#receive(JSON.parse(payload) as BusMessage);
        } catch (error) {
          this.log(`relay bus: dropped a message: ${(error as Error).message}`);
        }
      },
      () => this.#reconciled(),
    );
  }

  /** Signals sent while the LISTEN connection was down are lost: check every stream now. */
  #reconciled(): void {
    this.log("relay bus: listening again; revalidating held streams");
    this.onReconnect?.();
    this.hub.revalidate().then(
      (ended) => ended > 0 && this.log(`relay bus: ended ${ended} stream(s) after reconnecting`),
      (error) => this.log(`relay bus: revalidation failed: ${(error as Error).message}`),
    );
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }

  /** Tells every relay a node was revoked (drop its stream) or got new credentials. */
  async broadcast(kind: "revoked" | "credentials", nodeId: string, overlapMs = 0) {
    if (kind === "credentials") return await this.#credentials.submit({ nodeId, overlapMs });
    await this.#send({ to: "*", kind, node_id: nodeId, overlap_ms: overlapMs });
  }

  /** Whoever aborts cancelled executions on this relay (executions.ts). */
  onCancel?: (executionIds: string[]) => void;
  /** Run after the LISTEN connection came back: cancellations sent meanwhile were lost. */
  onReconnect?: () => void;

  /** Tells every relay these executions were cancelled (in NOTIFY-sized chunks). */
  async cancelElsewhere(executionIds: string[]): Promise<void> {
    for (const chunk of chunksUnder(executionIds, MAX_PAYLOAD_BYTES)) {
      await this.#send({ to: "*", kind: "cancel", execution_ids: chunk });
    }
  }

  #receive(message: BusMessage): void {
    if (message.to !== this.relayId && message.to !== "*") return;
    if (message.kind === "cancel") {
      if (Array.isArray(message.execution_ids)) this.onCancel?.(message.execution_ids);
      return;
    }
    const nodeIds = message.node_ids ?? (message.node_id ? [message.node_id] : []);
    for (const nodeId of nodeIds) {
      switch (message.kind) {
        case "revoked":
          this.hub.end(nodeId, new AegisError("NODE_REVOKED", `node ${nodeId} was revoked`));
          break;
        case "credentials":
          this.hub.get(nodeId)?.credentialsReplaced(message.overlap_ms);
          break;
      }
    }
  }

  async #send(message: BusMessage): Promise<void> {
    await this.db.notify(CHANNEL, JSON.stringify(message));
  }
}

/** Consecutive runs of `ids` whose JSON (quotes and commas included) stays within `bytes`. */
export function chunksUnder(ids: readonly string[], bytes: number): string[][] {
  const chunks: string[][] = [];
  let chunk: string[] = [];
  let size = 0;
  for (const id of ids) {
    const cost = new TextEncoder().encode(JSON.stringify(id)).length + 1;
    if (chunk.length > 0 && size + cost > bytes) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(id);
    size += cost;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
