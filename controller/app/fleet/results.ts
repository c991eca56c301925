// The per-node bookkeeping of a fleet operation, batched: a result row is written, and a
// rotated node's key fingerprint read back, in one statement for every node that finished while
// the previous statement ran. At a window of 10 this is a statement per few nodes; in parallel,
// one per several hundred.
import type { Queryable } from "../../store/db.ts";
import type { NodeOutcome } from "../../../shared/fleet_events.ts";
import { Coalescer } from "./coalesce.ts";

export interface ResultRow {
  node_id: string;
  name: string;
  wave: number;
  status: NodeOutcome;
  detail: string;
  exit_code: number | null;
  finished_at: Date;
}

/** Writes fleet_results rows of one operation; each submit resolves once its row is stored. */
export function resultWriter(db: Queryable, opId: string): Coalescer<ResultRow, void> {
  return new Coalescer<ResultRow, void>(async (rows) => {
    // One statement for the batch; JSON carries it the same way to PGlite and PostgreSQL.
    await db.query(
      `INSERT INTO fleet_results (op_id, node_id, name, wave, status, detail, exit_code, finished_at)
       SELECT $1, r.node_id, r.name, r.wave, r.status, r.detail, r.exit_code, r.finished_at
         FROM jsonb_to_recordset($2::jsonb) AS r(node_id text, name text, wave integer,
              status text, detail text, exit_code integer, finished_at timestamptz)`,
      [opId, JSON.stringify(rows)],
    );
    return rows.map(() => {});
  });
}

/** Reads the key fingerprint the controller holds for nodes (undefined once a node is gone). */
export function fingerprintReader(db: Queryable): Coalescer<string, string | undefined> {
  return new Coalescer(async (nodeIds) => {
    const rows = await db.query<{ node_id: string; key_fingerprint: string }>(
      `SELECT node_id, key_fingerprint FROM edge_daemons WHERE node_id = ANY($1::text[])`,
      [nodeIds],
    );
    const byNode = new Map(rows.map((r) => [r.node_id, r.key_fingerprint]));
    return nodeIds.map((id) => byNode.get(id));
  });
}
