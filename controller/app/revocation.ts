// Revoking a node: status Revoked, its active token blacklisted, its stream dropped at once.
// Used by `aegis edge logout` (the node asks) and by operators (`keys revoke-remote`). The status
// is what every relay's stream sweep reads, so a relay that misses the notification below still
// drops the stream within one heartbeat interval (see EdgeHub.revalidate).
import { AegisError } from "../../shared/errors.ts";
import type { Db } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import type { RelayBus } from "./relay_bus.ts";

export class RevocationService {
  constructor(
    private readonly db: Db,
    private readonly hub: EdgeHub,
    private readonly clock: Clock,
    private readonly bus?: RelayBus,
  ) {}

  /** Returns false when the node was already revoked (revoking is idempotent). */
  async revoke(nodeId: string, reason: string): Promise<boolean> {
    const now = this.clock();
    const revoked = await this.db.transaction(async (tx) => {
      const rows = await tx.query<{ token_jti: string | null; token_expires_at: Date | null }>(
        `UPDATE edge_daemons SET status = 'revoked', status_since = $2
           WHERE node_id = $1 AND status <> 'revoked'
         RETURNING token_jti, token_expires_at`,
        [nodeId, now],
      );
      const row = rows[0];
      if (!row) return false;
      if (row.token_jti) {
        await tx.query(
          `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (jti) DO NOTHING`,
          [row.token_jti, nodeId, reason, row.token_expires_at ?? now],
        );
      }
      return true;
    });
    this.dropStream(nodeId);
    // The stream may be held by another relay.
    await this.bus?.broadcast("revoked", nodeId);
    return revoked;
  }

  /** Ends the node's stream on this process with a typed refusal the daemon will show. */
  dropStream(nodeId: string): void {
    this.hub.end(nodeId, new AegisError("NODE_REVOKED", `node ${nodeId} was revoked`));
  }
}
