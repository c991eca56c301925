// The edge_daemons records: connection state as the controller sees it.
import type { Queryable } from "../store/db.ts";
import { AegisError } from "../../shared/errors.ts";
import type { Clock } from "./clock.ts";
import type { CredentialState, StreamCredentials } from "./session_validity.ts";
import type { StoredReport } from "./hello_report.ts";
import { REFRESH_GRACE_SECS } from "./tokens.ts";
import { BatchWriter } from "./batch_writer.ts";
import { CONNECTIONS_KEPT_PER_NODE } from "./connection_log.ts";

/** Streams judged per sweep query: keeps each statement's parameters a bounded size. */
const SWEEP_BATCH = 1000;

export type DaemonStatus = "pending" | "connected" | "disconnected" | "revoked";

export interface Capabilities {
  os?: string;
  arch?: string;
  hostname?: string;
  local_tools?: string[];
  mount_points?: string[];
  agent_version?: string;
  max_concurrent_calls?: number;
}

export interface DaemonRecord {
  node_id: string;
  tenant_id: string;
  name: string;
  public_key: string;
  key_fingerprint: string;
  status: DaemonStatus;
  status_since: Date;
  last_heartbeat_at: Date | null;
  capabilities: Capabilities;
  labels: Record<string, string>;
  tags: string[];
  endpoint: string;
  relay_id: string | null;
  remote_addr: string | null;
  reconnects: number;
  token_expires_at: Date | null;
  created_at: Date;
  /** What the daemon reported in its last Hello (bounded: hello_report.ts). */
  last_error: string | null;
  last_error_at: Date | null;
  connect_failures: number;
  /** Whether the node's current token is blacklisted (read by get, require and list). */
  token_revoked?: boolean;
}

/** Selects a record with whether its current token is blacklisted. */
const RECORD = `SELECT d.*, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = d.token_jti)
                  AS token_revoked
                  FROM edge_daemons d`;

export interface ConnectedInfo {
  /**
   * The connection's start, recorded as status_since: the stream's own mark, so that its end
   * clears this connection and never a newer one of the same node (see markDisconnected).
   */
  at?: Date;
  relayId: string;
  remoteAddr: string;
  capabilities: Capabilities;
  labels: Record<string, string>;
  /** The daemon's own account of how it fared before this stream, already bounded. */
  report?: StoredReport;
}

export class DaemonRepository {
  /** Heartbeats of every stream, coalesced: one UPDATE per flush, however many nodes beat. */
  readonly #heartbeats: BatchWriter<{ node_id: string; at: Date }>;
  /**
   * Ended streams, coalesced the same way: a network blip or a relay's neighbour going away
   * ends thousands of streams at once, and one UPDATE each queued them behind one another.
   */
  readonly #disconnects: BatchWriter<Disconnect>;

  constructor(private readonly db: Queryable, private readonly clock: Clock) {
    this.#heartbeats = new BatchWriter((rows) => this.#writeHeartbeats(rows), { maxBatch: 2000 });
    this.#disconnects = new BatchWriter((rows) => this.#writeDisconnects(rows), {
      maxBatch: 2000,
    });
  }

  /** Resolves once every heartbeat and disconnect written so far was flushed (or failed). */
  async drain(): Promise<void> {
    await Promise.all([this.#heartbeats.drain(), this.#disconnects.drain()]);
  }

  async get(nodeId: string): Promise<DaemonRecord | undefined> {
    const rows = await this.db.query<DaemonRecord>(`${RECORD} WHERE d.node_id = $1`, [nodeId]);
    return rows[0];
  }

  /** The host, if it exists and (when tenants are given) belongs to one of them. */
  async require(nodeId: string, tenantIds?: readonly string[]): Promise<DaemonRecord> {
    const record = await this.get(nodeId);
    // Another tenant's host is reported exactly like a missing one: no existence oracle.
    if (!record || (tenantIds !== undefined && !tenantIds.includes(record.tenant_id))) {
      throw new AegisError("NOT_FOUND", `no edge host ${nodeId}`);
    }
    return record;
  }

  async list(tenantId: string): Promise<DaemonRecord[]> {
    return await this.db.query<DaemonRecord>(
      `${RECORD} WHERE d.tenant_id = $1 ORDER BY d.created_at, d.node_id`,
      [tenantId],
    );
  }

  /** Every host of these tenants (the console's list across the tenants an operator sees). */
  async listTenants(tenantIds: readonly string[]): Promise<DaemonRecord[]> {
    return await this.db.query<DaemonRecord>(
      `${RECORD} WHERE d.tenant_id = ANY($1::text[]) ORDER BY d.created_at, d.node_id`,
      [[...tenantIds]],
    );
  }

  /**
   * A stream said Hello. A node that was connected before counts one more reconnect. False when
   * the node is revoked (or gone): the row lock makes this see a revocation that committed
   * meanwhile, so a caller that registered the stream first cannot miss one.
   */
  async markConnected(nodeId: string, info: ConnectedInfo): Promise<boolean> {
    // The connection log's row is added, and the node's oldest beyond the bound deleted, in the
    // same statement: no extra round trip per Hello. Every part reads the statement's snapshot,
    // so the DELETE does not see the row being added and keeps one fewer of the old ones.
    const rows = await this.db.query(
      `WITH u AS (
         UPDATE edge_daemons SET
           status = 'connected', status_since = $2, last_heartbeat_at = $2, relay_id = $3,
           remote_addr = $4, capabilities = capabilities || $5::jsonb, labels = $6::jsonb,
           reconnects = reconnects + CASE WHEN status = 'pending' THEN 0 ELSE 1 END,
           last_error = $7, last_error_at = $8, connect_failures = $9
         WHERE node_id = $1 AND status <> 'revoked'
         RETURNING node_id, status_since, relay_id, remote_addr,
                   capabilities->>'agent_version' AS agent_version
       ), logged AS (
         INSERT INTO edge_connections (node_id, connected_at, relay_id, remote_addr, agent_version)
         SELECT node_id, status_since, relay_id, remote_addr, agent_version FROM u
       ), pruned AS (
         DELETE FROM edge_connections c
          WHERE c.node_id = $1 AND EXISTS (SELECT 1 FROM u) AND c.id IN (
            SELECT id FROM edge_connections WHERE node_id = $1
             ORDER BY connected_at DESC, id DESC OFFSET ${CONNECTIONS_KEPT_PER_NODE - 1})
       )
       SELECT node_id FROM u`,
      [
        nodeId,
        info.at ?? this.clock(),
        info.relayId,
        info.remoteAddr,
        JSON.stringify(info.capabilities),
        JSON.stringify(info.labels),
        info.report?.lastError ?? null,
        info.report?.lastErrorAt ?? null,
        info.report?.failures ?? 0,
      ],
    );
    return rows.length === 1;
  }

  /** The records behind live streams, read in batches: one statement per SWEEP_BATCH streams. */
  async credentialStates(
    streams: readonly StreamCredentials[],
  ): Promise<Map<string, CredentialState>> {
    const states = new Map<string, CredentialState>();
    for (let i = 0; i < streams.length; i += SWEEP_BATCH) {
      const batch = streams.slice(i, i + SWEEP_BATCH);
      const rows = await this.db.query<CredentialState & { jti: string }>(
        `SELECT s.jti, d.node_id, d.status, d.key_fingerprint, d.previous_key_fingerprint,
                d.rotated_at, r.revoked_at AS token_revoked_at
           FROM unnest($1::text[], $2::text[]) AS s(node_id, jti)
           JOIN edge_daemons d ON d.node_id = s.node_id
           LEFT JOIN revoked_tokens r ON r.jti = s.jti`,
        [batch.map((s) => s.nodeId), batch.map((s) => s.jti)],
      );
      for (const { jti, ...state } of rows) states.set(streamKey(state.node_id, jti), state);
    }
    return states;
  }

  /** Resolves once the node's heartbeat is written (with those of every node that beat meanwhile). */
  async heartbeat(nodeId: string): Promise<void> {
    await this.#heartbeats.write({ node_id: nodeId, at: this.clock() });
  }

  async #writeHeartbeats(rows: { node_id: string; at: Date }[]): Promise<void> {
    // One row per node, its latest beat: UPDATE … FROM takes an arbitrary one of duplicates.
    const latest = new Map(rows.map((row) => [row.node_id, row]));
    // The ids as an array too (an InitPlan): joined on the recordset alone, the planner guesses
    // 100 rows, hashes them and scans every record for each flush (call_records.ts has the same).
    await this.db.query(
      `UPDATE edge_daemons d SET last_heartbeat_at = r.at
         FROM jsonb_to_recordset($1::jsonb) AS r(node_id text, at timestamptz)
        WHERE d.node_id = ANY(ARRAY(SELECT e->>'node_id' FROM jsonb_array_elements($1::jsonb) e))
          AND d.node_id = r.node_id AND d.status = 'connected'`,
      [JSON.stringify([...latest.values()])],
    );
  }

  /**
   * The stream held by this relay ended; resolves once that is written. Only the connection
   * the stream itself recorded is marked (status_since is its start, `connectedAt`): written
   * late (batched, or queued behind a slow database), this end must not mark Disconnected a
   * node that has meanwhile said Hello again, here or anywhere. Without `connectedAt` (the
   * stream never recorded a connection) it applies to whatever this relay holds.
   */
  async markDisconnected(nodeId: string, relayId: string, connectedAt?: Date): Promise<void> {
    await this.#disconnects.write({ node_id: nodeId, relay_id: relayId, since: connectedAt });
  }

  async #writeDisconnects(rows: Disconnect[]): Promise<void> {
    // The connection log's rows are closed in the same statement. Unlike the record, the log
    // row of a stream is its own: it is closed even when the node has meanwhile connected again.
    await this.db.query(
      `WITH ended AS (
         UPDATE edge_connections c SET disconnected_at = $2
           FROM jsonb_to_recordset($1::jsonb) AS r(node_id text, relay_id text, since timestamptz)
          WHERE c.node_id = ANY(ARRAY(SELECT e->>'node_id' FROM jsonb_array_elements($1::jsonb) e))
            AND c.node_id = r.node_id AND c.relay_id = r.relay_id AND c.disconnected_at IS NULL
            AND (r.since IS NULL OR c.connected_at = r.since)
       )
       UPDATE edge_daemons d SET status = 'disconnected', status_since = $2
         FROM jsonb_to_recordset($1::jsonb) AS r(node_id text, relay_id text, since timestamptz)
        WHERE d.node_id = ANY(ARRAY(SELECT e->>'node_id' FROM jsonb_array_elements($1::jsonb) e))
          AND d.node_id = r.node_id AND d.relay_id = r.relay_id AND d.status = 'connected'
          AND (r.since IS NULL OR d.status_since = r.since)`,
      [JSON.stringify(rows), this.clock()],
    );
  }

  /** At start-up: streams this relay held before it stopped are gone. */
  async releaseRelay(relayId: string): Promise<number> {
    const rows = await this.db.query(
      `WITH ended AS (
         UPDATE edge_connections SET disconnected_at = $2
          WHERE relay_id = $1 AND disconnected_at IS NULL
       )
       UPDATE edge_daemons SET status = 'disconnected', status_since = $2
         WHERE relay_id = $1 AND status = 'connected' RETURNING node_id`,
      [relayId, this.clock()],
    );
    return rows.length;
  }
}

interface Disconnect {
  node_id: string;
  relay_id: string;
  since?: Date;
}

/** Where credentialStates() files the record for a stream's node and token. */
export function streamKey(nodeId: string, jti: string): string {
  return `${nodeId}\u0000${jti}`;
}

/** The status people see: a record left "connected" whose heartbeats stopped is not. */
export function effectiveStatus(
  record: DaemonRecord,
  heartbeatIntervalSecs: number,
  now: Date,
): DaemonStatus {
  if (record.status !== "connected" || !record.last_heartbeat_at) return record.status;
  const silentMs = now.getTime() - record.last_heartbeat_at.getTime();
  return silentMs > 3 * heartbeatIntervalSecs * 1000 ? "disconnected" : "connected";
}

export function displayStatus(status: DaemonStatus): string {
  return {
    pending: "Pending",
    connected: "Connected",
    disconnected: "Disconnected",
    revoked: "Revoked",
  }[status];
}

/** Whether the controller takes a node's credentials: "ok", "token_expired" or "revoked". */
export type ControllerAuthState = "ok" | "token_expired" | "revoked";

export interface AuthView {
  state: ControllerAuthState;
  detail: string;
  /** The expiry of the node's current token (the last one issued to it). */
  token_expires: string | null;
}

/** The node's credentials as this controller knows them: its record and its current token. */
export function authView(record: DaemonRecord, now: Date): AuthView {
  const exp = record.token_expires_at;
  const token_expires = exp?.toISOString() ?? null;
  if (record.status === "revoked") {
    return {
      state: "revoked",
      detail: `the node was revoked at ${record.status_since.toISOString()}`,
      token_expires,
    };
  }
  if (record.token_revoked) {
    return { state: "revoked", detail: "the node's current token was revoked", token_expires };
  }
  if (!exp) {
    return { state: "token_expired", detail: "no token was issued to this node", token_expires };
  }
  if (exp.getTime() <= now.getTime()) {
    const renewable = now.getTime() - exp.getTime() < REFRESH_GRACE_SECS * 1000;
    return {
      state: "token_expired",
      detail: `the node's current token expired at ${token_expires}; ` +
        (renewable
          ? "the daemon renews it with its key when it next reaches the controller"
          : "past the refresh grace: re-enroll the host"),
      token_expires,
    };
  }
  return {
    state: "ok",
    detail: `the node's current token is valid until ${token_expires}`,
    token_expires,
  };
}

/** The daemon's reported last connection error, as operators see it. */
export function lastErrorView(
  record: DaemonRecord,
): { message: string; at: string | null } | null {
  return record.last_error === null
    ? null
    : { message: record.last_error, at: record.last_error_at?.toISOString() ?? null };
}
