// Several relays share one PostgreSQL: small control signals (a node was revoked, its credentials
// changed) reach every relay through LISTEN/NOTIFY. Call data never travels here: NOTIFY payloads
// are capped at 8000 bytes and concurrent NOTIFYs do not keep order, so calls go relay to relay
// over RelayPeerService (see peer_calls.ts).
import { AegisError } from "../../shared/errors.ts";
import type { Db } from "../store/db.ts";
import type { EdgeHub } from "./edge_sessions.ts";

const CHANNEL = "aegis_edge_bus";

type BusMessage = { to: "*"; kind: "revoked" | "credentials"; node_id: string; overlap_ms: number };

export class RelayBus {
  #stop?: () => Promise<void>;

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
    await this.#send({ to: "*", kind, node_id: nodeId, overlap_ms: overlapMs });
  }

  #receive(message: BusMessage): void {
    if (message.to !== this.relayId && message.to !== "*") return;
    switch (message.kind) {
      case "revoked":
        this.hub.end(
          message.node_id,
          new AegisError("NODE_REVOKED", `node ${message.node_id} was revoked`),
        );
        return;
      case "credentials":
        this.hub.get(message.node_id)?.credentialsReplaced(message.overlap_ms);
        return;
    }
  }

  async #send(message: BusMessage): Promise<void> {
    await this.db.notify(CHANNEL, JSON.stringify(message));
  }
}
