// The audit log: who (identity kind, issuer, subject, security context) did what to which target,
// when, and how it ended, for every tool call, token issue, revoke, rotation and fleet operation.
// Records are appended to a per-tenant hash chain (shared/audit_chain.ts), kept per the tenant
// tier's retention, exported as JSON lines and verified by the CLI on the client side.
//
// Writes go through a group-commit queue (batch_writer.ts): every record queued while a flush
// runs is chained and written by one transaction. The chain is computed inside that transaction,
// with each tenant's head row locked (SELECT ... FOR UPDATE), so relays that share a database
// append to one chain, in one order, however their flushes interleave.
//
// A failed write is never silent and never fails the caller's action: record() logs it (through
// the log function the controller passes), counts it in `failures`, and resolves all the same.
// The action already happened (a node was revoked, a call ran); refusing to report that to its
// caller because its record could not be written would make the two disagree, not undo it.
import { storableText } from "../../shared/printable.ts";
import { AegisError } from "../../shared/errors.ts";
import {
  type AuditAnchor,
  type AuditRecord,
  chainRecord,
  GENESIS_HASH,
  type UnhashedRecord,
} from "../../shared/audit_chain.ts";
import type { Db, Queryable } from "../store/db.ts";
import { BatchWriter } from "./batch_writer.ts";
import type { Clock } from "./clock.ts";
import type { Actor } from "./identity.ts";

export interface AuditEvent {
  tenantId: string;
  actor: Actor;
  /** What was done: "tool.call", "enrollment_token.issue", "node.revoke", "node.rotate_key", ... */
  action: string;
  /** What it was done to: a node id, a call id, a fleet target. */
  target: string;
  /** How it ended: "ok", "refused", "failed", ... */
  outcome: string;
  /** Anything else worth keeping; secrets are redacted and it is trimmed to MAX_DETAIL_BYTES. */
  detail?: Record<string, unknown>;
  executionId?: string;
  /**
   * How long the record is kept: the security context's audit_retention_days (Business 90,
   * Enterprise 365, configurable in controller/security_config.ts).
   */
  retentionDays: number;
}

/**
 * A node acting on its own credentials (a key rotation, a token refresh): its subject is its
 * node id, vouched for by the controller that issued its token.
 */
export function nodeActor(nodeId: string, issuer: string): Actor {
  return { kind: "node", issuer, subject: nodeId, context: "edge-node" };
}

/** The longest retention a record may ask for (ten years). */
export const MAX_RETENTION_DAYS = 3650;

/** The largest detail kept, as UTF-8 JSON; larger ones keep their first entries that fit. */
export const MAX_DETAIL_BYTES = 4096;

/** Bounds of the text fields; longer values are cut (and marked) rather than refused. */
const FIELD_LIMITS = {
  tenant: 128,
  actor: 256,
  action: 64,
  target: 512,
  outcome: 64,
  execution: 128,
} as const;

/** Keys whose values are credentials, at any depth of a detail: never written. */
const SECRET_KEY =
  /(^|[_-])(token|secret|password|passphrase|authorization|bearer|jwt|private_key|api_key|credentials?)$/i;
/** A JWT (or JWS) wherever it appears, whatever its key: never written. */
const JWT_TEXT = /eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/;
const REDACTED = "<redacted>";
/** Nesting kept in a detail; deeper values are replaced (a detail is a summary, not a dump). */
const MAX_DETAIL_DEPTH = 6;
/** Elements of an array, or entries of an object, looked at in a detail. */
const MAX_DETAIL_ENTRIES = 256;

/** Rows read per query when exporting or pruning: what one page holds in memory. */
const PAGE_ROWS = 500;
/** Records deleted per transaction when pruning, so writers of the tenant never wait long. */
const PRUNE_ROWS = 5000;
/** Tenants pruned per prune() call; the next call takes the rest. */
const PRUNE_TENANTS = 10_000;
/** Attempts of one flush on a serialization failure or deadlock before its records fail. */
const FLUSH_ATTEMPTS = 3;
const RETRYABLE_SQLSTATES = new Set(["40001", "40P01", "23505"]);

export interface AuditExportOptions {
  /** Only records from the first one recorded at or after this time on (to the head). */
  since?: Date;
  /** At most this many records. */
  limit?: number;
}

export interface AuditExport {
  anchor: AuditAnchor;
  /** Read from the database a page at a time as they are iterated. */
  records: AsyncIterable<AuditRecord>;
}

type Pending = UnhashedRecord;

const COLUMNS = `tenant_id, seq, recorded_at, retain_until, actor_kind, actor_issuer,
  actor_subject, actor_context, action, target, outcome, detail, execution_id, relay_id,
  prev_hash, hash`;
const RECORDSET_COLUMNS = `tenant_id text, seq bigint, recorded_at timestamptz,
  retain_until timestamptz, actor_kind text, actor_issuer text, actor_subject text,
  actor_context text, action text, target text, outcome text, detail text, execution_id text,
  relay_id text, prev_hash text, hash text`;

export class AuditLog {
  readonly #writer: BatchWriter<Pending>;
  #failures = 0;

  constructor(
    private readonly db: Db,
    private readonly relayId: string,
    private readonly clock: Clock,
    private readonly log: (message: string) => void = (message) => console.error(message),
  ) {
    this.#writer = new BatchWriter((rows) => this.#flush(rows));
  }

  /** Records that could not be written since this log was made (each was logged). */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Queues a record, stamped now; resolves once it is committed, or once its failure was logged
   * (it never rejects: see the top of this file).
   */
  record(event: AuditEvent): Promise<void> {
    let row: Pending;
    try {
      row = this.#row(event);
    } catch (error) {
      this.#failed(event, error);
      return Promise.resolve();
    }
    return this.#writer.write(row).catch((error) => this.#failed(event, error));
  }

  /** Resolves once every record queued so far was written (or its failure logged). */
  drain(): Promise<void> {
    return this.#writer.drain();
  }

  /** Where the tenant's chain starts and ends now (a tenant with no records: an empty chain). */
  async anchor(tenantId: string): Promise<AuditAnchor> {
    const [head] = await this.db.query<
      { seq: number; hash: string; pruned_through_seq: number; pruned_through_hash: string }
    >(
      `SELECT seq, hash, pruned_through_seq, pruned_through_hash FROM audit_heads
        WHERE tenant_id = $1`,
      [tenantId],
    );
    return {
      tenant_id: tenantId,
      pruned_through_seq: head?.pruned_through_seq ?? 0,
      pruned_through_hash: head?.pruned_through_hash ?? GENESIS_HASH,
      head_seq: head?.seq ?? 0,
      head_hash: head?.hash ?? GENESIS_HASH,
    };
  }

  /**
   * The tenant's chain as it stands: its anchor, then its records in seq order up to the head
   * the anchor names (records appended meanwhile are left for the next export). Records are
   * read a page at a time, so an export of any length holds one page in memory. Not a snapshot:
   * a prune that overtakes a slow reader (deleting expired records it has not read yet) shows
   * as missing records in that export; the next one verifies.
   */
  async export(tenantId: string, options: AuditExportOptions = {}): Promise<AuditExport> {
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new AegisError("INVALID_ARGUMENT", "an export limit must be a positive integer");
    }
    // A prune between reading the anchor and the first page would start the records past the
    // anchor (a false "missing"): read both again while the anchor moves. Pruning is rare.
    for (let attempt = 1;; attempt++) {
      const anchor = await this.anchor(tenantId);
      const from = options.since
        ? await this.#firstSince(tenantId, options.since, anchor)
        : anchor.pruned_through_seq + 1;
      const first = await this.#page(tenantId, from - 1, anchor.head_seq, limit);
      const gapAtFront = options.since === undefined && first.length > 0 &&
        first[0].seq !== anchor.pruned_through_seq + 1;
      if (
        gapAtFront && attempt < 3 &&
        (await this.anchor(tenantId)).pruned_through_seq !== anchor.pruned_through_seq
      ) continue;
      return { anchor, records: this.#rest(tenantId, anchor.head_seq, first, limit) };
    }
  }

  /**
   * Deletes, per tenant, the oldest records whose retention has passed, up to the first one
   * still retained (a chain loses only a prefix, never a record in its middle), and moves the
   * tenant's pruning anchor to the last one deleted so what is left still verifies. Returns the
   * number of records deleted.
   */
  async prune(now: Date): Promise<number> {
    const tenants = await this.db.query<{ tenant_id: string }>(
      `SELECT DISTINCT tenant_id FROM audit_log WHERE retain_until <= $1 LIMIT ${PRUNE_TENANTS}`,
      [now],
    );
    let deleted = 0;
    for (const { tenant_id } of tenants) {
      while (true) {
        const n = await this.#prunePrefix(tenant_id, now);
        deleted += n;
        if (n < PRUNE_ROWS) break;
      }
    }
    return deleted;
  }

  async #prunePrefix(tenantId: string, now: Date): Promise<number> {
    return await this.db.transaction(async (tx) => {
      const [head] = await tx.query<{ seq: number; pruned_through_seq: number }>(
        `SELECT seq, pruned_through_seq FROM audit_heads WHERE tenant_id = $1 FOR UPDATE`,
        [tenantId],
      );
      if (!head) return 0;
      const [kept] = await tx.query<{ seq: number }>(
        `SELECT seq FROM audit_log WHERE tenant_id = $1 AND retain_until > $2
          ORDER BY seq LIMIT 1`,
        [tenantId, now],
      );
      const through = Math.min(
        kept ? kept.seq - 1 : head.seq,
        head.pruned_through_seq + PRUNE_ROWS,
      );
      // The end of the unbroken run of records right after the anchor (seq - its rank stays at
      // the anchor's seq until the first gap): its hash is what the next record chains to. A
      // record deleted by hand stops pruning there, so the gap it left stays for verify to see.
      const [last] = await tx.query<{ seq: number; hash: string }>(
        `SELECT seq, hash FROM (
           SELECT seq, hash, seq - row_number() OVER (ORDER BY seq) AS drift FROM audit_log
            WHERE tenant_id = $1 AND seq > $2 AND seq <= $3) run
          WHERE drift = $2 ORDER BY seq DESC LIMIT 1`,
        [tenantId, head.pruned_through_seq, through],
      );
      if (!last || last.seq <= head.pruned_through_seq) return 0;
      const [{ n }] = await tx.query<{ n: number }>(
        `WITH d AS (DELETE FROM audit_log WHERE tenant_id = $1 AND seq <= $2 RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
        [tenantId, last.seq],
      );
      await tx.query(
        `UPDATE audit_heads SET pruned_through_seq = $2, pruned_through_hash = $3
          WHERE tenant_id = $1`,
        [tenantId, last.seq, last.hash],
      );
      return n;
    });
  }

  async #firstSince(tenantId: string, since: Date, anchor: AuditAnchor): Promise<number> {
    const [row] = await this.db.query<{ seq: number | null }>(
      `SELECT min(seq) AS seq FROM audit_log WHERE tenant_id = $1 AND recorded_at >= $2`,
      [tenantId, since],
    );
    return row?.seq ?? anchor.head_seq + 1;
  }

  async #page(
    tenantId: string,
    afterSeq: number,
    headSeq: number,
    rows: number,
  ): Promise<AuditRecord[]> {
    const page = await this.db.query<Record<string, unknown>>(
      `SELECT ${COLUMNS} FROM audit_log WHERE tenant_id = $1 AND seq > $2 AND seq <= $3
        ORDER BY seq LIMIT ${Math.max(1, Math.min(rows, PAGE_ROWS))}`,
      [tenantId, afterSeq, headSeq],
    );
    return page.map(fromRow);
  }

  async *#rest(
    tenantId: string,
    headSeq: number,
    first: AuditRecord[],
    limit: number,
  ): AsyncGenerator<AuditRecord> {
    let page = first;
    let sent = 0;
    while (page.length > 0) {
      for (const record of page) {
        yield record;
        if (++sent >= limit) return;
      }
      if (page.length < PAGE_ROWS) return;
      page = await this.#page(tenantId, page.at(-1)!.seq, headSeq, limit - sent);
    }
  }

  #row(event: AuditEvent): Pending {
    const tenantId = event.tenantId?.trim();
    if (!tenantId || tenantId.length > FIELD_LIMITS.tenant) {
      throw new AegisError("INVALID_ARGUMENT", "an audit record needs a tenant id of 1-128 chars");
    }
    const days = event.retentionDays;
    if (!Number.isFinite(days) || days <= 0 || days > MAX_RETENTION_DAYS) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `an audit record's retention must be 1-${MAX_RETENTION_DAYS} days, not ${days}`,
      );
    }
    const recorded = this.clock();
    return {
      tenant_id: tenantId,
      seq: 0, // given by the flush, under the tenant's lock
      recorded_at: recorded.toISOString(),
      retain_until: new Date(recorded.getTime() + days * 86_400_000).toISOString(),
      actor_kind: cut(event.actor.kind, FIELD_LIMITS.actor),
      actor_issuer: cut(event.actor.issuer, FIELD_LIMITS.actor),
      actor_subject: cut(event.actor.subject, FIELD_LIMITS.actor),
      actor_context: cut(event.actor.context, FIELD_LIMITS.actor),
      action: cut(event.action, FIELD_LIMITS.action),
      target: cut(event.target, FIELD_LIMITS.target),
      outcome: cut(event.outcome, FIELD_LIMITS.outcome),
      detail: event.detail === undefined ? null : boundedDetail(event.detail),
      execution_id: event.executionId === undefined
        ? null
        : cut(event.executionId, FIELD_LIMITS.execution),
      relay_id: this.relayId,
    };
  }

  #failed(event: AuditEvent, error: unknown): void {
    this.#failures++;
    const message = error instanceof Error ? error.message : String(error);
    this.log(
      `audit: could not record ${JSON.stringify(event.action)} on ` +
        `${JSON.stringify(String(event.target).slice(0, 200))} (tenant ` +
        `${JSON.stringify(event.tenantId)}, by ${JSON.stringify(event.actor?.subject)}): ` +
        JSON.stringify(message),
    );
  }

  async #flush(rows: Pending[]): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        await this.db.transaction((tx) => this.#append(tx, rows));
        return;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (attempt >= FLUSH_ATTEMPTS || !RETRYABLE_SQLSTATES.has(String(code))) throw error;
      }
    }
  }

  /** Chains and inserts one batch; runs inside the flush's transaction. */
  async #append(tx: Queryable, rows: Pending[]): Promise<void> {
    // Sorted, so two relays flushing the same tenants lock their heads in the same order and
    // cannot deadlock. The head row is created first (a no-op when it exists or a peer creates
    // it first), so there is always a row to lock, even for a tenant's very first record.
    const tenants = [...new Set(rows.map((r) => r.tenant_id))].sort();
    await tx.query(
      `INSERT INTO audit_heads (tenant_id, seq, hash, pruned_through_seq, pruned_through_hash)
       SELECT t, 0, $2, 0, $2 FROM unnest($1::text[]) AS t ORDER BY t
       ON CONFLICT (tenant_id) DO NOTHING`,
      [tenants, GENESIS_HASH],
    );
    const heads = await tx.query<{ tenant_id: string; seq: number; hash: string }>(
      `SELECT tenant_id, seq, hash FROM audit_heads WHERE tenant_id = ANY($1::text[])
        ORDER BY tenant_id FOR UPDATE`,
      [tenants],
    );
    const tip = new Map(heads.map((h) => [h.tenant_id, { seq: h.seq, hash: h.hash }]));
    const chained: AuditRecord[] = [];
    for (const row of rows) {
      const head = tip.get(row.tenant_id)!;
      const record = chainRecord(head.hash, { ...row, seq: head.seq + 1 });
      tip.set(row.tenant_id, { seq: record.seq, hash: record.hash });
      chained.push(record);
    }
    await tx.query(
      `INSERT INTO audit_log (${COLUMNS})
       SELECT ${COLUMNS} FROM jsonb_to_recordset($1::jsonb) AS r(${RECORDSET_COLUMNS})`,
      [JSON.stringify(chained)],
    );
    await tx.query(
      `UPDATE audit_heads h SET seq = n.seq, hash = n.hash
         FROM jsonb_to_recordset($1::jsonb) AS n(tenant_id text, seq bigint, hash text)
        WHERE h.tenant_id = n.tenant_id`,
      [JSON.stringify([...tip].map(([tenant_id, head]) => ({ tenant_id, ...head })))],
    );
  }
}

function fromRow(row: Record<string, unknown>): AuditRecord {
  return {
    tenant_id: row.tenant_id as string,
    seq: Number(row.seq),
    recorded_at: (row.recorded_at as Date).toISOString(),
    retain_until: (row.retain_until as Date).toISOString(),
    actor_kind: row.actor_kind as string,
    actor_issuer: row.actor_issuer as string,
    actor_subject: row.actor_subject as string,
    actor_context: row.actor_context as string,
    action: row.action as string,
    target: row.target as string,
    outcome: row.outcome as string,
    detail: row.detail as string | null,
    execution_id: row.execution_id as string | null,
    relay_id: row.relay_id as string,
    prev_hash: row.prev_hash as string,
    hash: row.hash as string,
  };
}

/**
 * Text as stored: repaired, without control characters, cut to `max` code points with the cut
 * marked, so a trimmed value never passes as whole and no caller's text can make the database
 * refuse the batch it shares with other tenants' records (shared/printable.ts).
 */
function cut(value: unknown, max: number): string {
  return storableText(value, max);
}

const utf8Bytes = (text: string) => new TextEncoder().encode(text).length;

/**
 * A detail as stored: credentials redacted, nesting bounded, and at most MAX_DETAIL_BYTES of
 * JSON. An oversized detail keeps its first top-level entries that fit and says how many it lost
 * ("_trimmed"): the record still says what happened, without one caller's payload in it.
 */
export function boundedDetail(detail: Record<string, unknown>): string {
  const clean = redact(detail, 0) as Record<string, unknown>;
  const whole = JSON.stringify(clean);
  if (utf8Bytes(whole) <= MAX_DETAIL_BYTES) return whole;
  const entries = Object.entries(clean);
  const kept: Record<string, unknown> = {};
  let dropped = entries.length;
  for (const [key, value] of entries) {
    const next = { ...kept, [key]: value, _trimmed: dropped - 1 };
    if (utf8Bytes(JSON.stringify(next)) > MAX_DETAIL_BYTES) continue;
    kept[key] = value;
    dropped--;
  }
  return JSON.stringify({ ...kept, _trimmed: dropped });
}

function redact(value: unknown, depth: number): unknown {
  if (typeof value === "string") {
    return JWT_TEXT.test(value) ? REDACTED : cut(value, MAX_DETAIL_BYTES);
  }
  // JSON drops undefined (and functions) in objects itself; the rest it can say, or as text.
  if (value === null || value === undefined || typeof value === "function") return value;
  if (typeof value !== "object") {
    return typeof value === "number" || typeof value === "boolean" ? value : String(value);
  }
  if (depth >= MAX_DETAIL_DEPTH) return "<nested too deep>";
  if (value instanceof Date) return value.toISOString();
  // Entries past MAX_DETAIL_ENTRIES could not fit in the stored bytes anyway: not even looked at.
  if (Array.isArray(value)) {
    return value.slice(0, MAX_DETAIL_ENTRIES).map((v) => redact(v, depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value).slice(0, MAX_DETAIL_ENTRIES)) {
    out[key] = SECRET_KEY.test(key) ? REDACTED : redact(v, depth + 1);
  }
  return out;
}
