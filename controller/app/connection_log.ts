// Each node's recent connections, as operators read them on the host page: when a stream said
// Hello, through which relay, from where, with which agent, and when it ended. Rows are written
// by DaemonRepository in the statements that already mark a node connected or disconnected, so
// the log costs no extra round trip on the connect and disconnect paths (15,000 streams).
import type { Queryable } from "../store/db.ts";

/** Rows kept per node; markConnected deletes older ones in the statement that adds one. */
export const CONNECTIONS_KEPT_PER_NODE = 50;

export interface ConnectionRecord {
  connected_at: Date;
  /** Null while the stream lives, or when its end was never recorded (its relay died). */
  disconnected_at: Date | null;
  relay_id: string;
  remote_addr: string | null;
  agent_version: string | null;
}

/** The node's newest connections first. */
export async function connectionHistory(
  db: Queryable,
  nodeId: string,
  limit = 20,
): Promise<ConnectionRecord[]> {
  return await db.query<ConnectionRecord>(
    `SELECT connected_at, disconnected_at, relay_id, remote_addr, agent_version
       FROM edge_connections WHERE node_id = $1
      ORDER BY connected_at DESC, id DESC LIMIT $2`,
    [nodeId, Math.max(1, Math.min(limit, CONNECTIONS_KEPT_PER_NODE))],
  );
}
