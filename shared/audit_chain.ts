// The audit log's hash chain, shared by the controller (which writes it) and the CLI (which checks
// an export of it on the client side, so a verdict never rests on the controller's word).
//
// Each tenant has its own chain: record N's hash is SHA-256 (hex) over record N-1's hash followed
// by record N's canonical serialisation, the first record chaining to GENESIS_HASH. Editing a
// record breaks its own hash; deleting one leaves a gap in seq and a prev_hash that points at
// nothing; deleting the newest ones is caught by the head (the tenant's last seq and hash, kept
// in a row of its own); pruning expired records moves an anchor (the last pruned seq and hash)
// so what is left still verifies.
import { createHash } from "node:crypto";

/** What the first record of every chain is chained to. */
export const GENESIS_HASH = "0".repeat(64);

/** One audit record as stored and exported. Times are ISO-8601 UTC with milliseconds. */
export interface AuditRecord {
  tenant_id: string;
  seq: number;
  recorded_at: string;
  retain_until: string;
  actor_kind: string;
  actor_issuer: string;
  actor_subject: string;
  actor_context: string;
  action: string;
  target: string;
  outcome: string;
  /** JSON text exactly as stored (it is hashed as such), or null. */
  detail: string | null;
  execution_id: string | null;
  relay_id: string;
  prev_hash: string;
  hash: string;
}

export type UnhashedRecord = Omit<AuditRecord, "hash" | "prev_hash">;

/** Where a tenant's chain starts (after pruning) and ends, as the controller's head row says. */
export interface AuditAnchor {
  tenant_id: string;
  pruned_through_seq: number;
  pruned_through_hash: string;
  head_seq: number;
  head_hash: string;
}

/**
 * The canonical form of a record: a JSON array of its fields in this fixed order. JSON.stringify
 * of strings, integers and null is exact and unambiguous (quotes and separators cannot be forged
 * by a field's content), and a fixed order keeps it independent of how a row's keys came back.
 */
export function canonicalRecord(record: UnhashedRecord): string {
  return JSON.stringify([
    record.tenant_id,
    record.seq,
    record.recorded_at,
    record.retain_until,
    record.actor_kind,
    record.actor_issuer,
    record.actor_subject,
    record.actor_context,
    record.action,
    record.target,
    record.outcome,
    record.detail,
    record.execution_id,
    record.relay_id,
  ]);
}

export function recordHash(prevHash: string, record: UnhashedRecord): string {
  return createHash("sha256").update(prevHash).update(canonicalRecord(record)).digest("hex");
}

/** Chains `record` to `prevHash`: the stored form of a new record. */
export function chainRecord(prevHash: string, record: UnhashedRecord): AuditRecord {
  return { ...record, prev_hash: prevHash, hash: recordHash(prevHash, record) };
}

export type ChainProblem =
  /** The record's content no longer matches its own hash. */
  | { kind: "edited"; seq: number }
  /** A record whose content and hash were both rewritten: the next one chained to another. */
  | { kind: "rewritten"; seq: number }
  /** Records from..to are absent (a gap in seq, or before the first record left). */
  | { kind: "missing"; from: number; to: number }
  /** The newest records from..to are absent: the head says the chain is longer. */
  | { kind: "tail_missing"; from: number; to: number }
  /** A record that comes after one with a higher seq. */
  | { kind: "out_of_order"; seq: number; after: number }
  /** A second record with the same seq. */
  | { kind: "duplicate"; seq: number }
  /** A record of another tenant, past the head, or not chained to where the chain starts. */
  | { kind: "foreign"; seq: number; reason: string };

export function describeProblem(problem: ChainProblem): string {
  switch (problem.kind) {
    case "edited":
      return `record ${problem.seq} was edited (its content no longer matches its hash)`;
    case "rewritten":
      return `record ${problem.seq} was rewritten (the record after it was chained to another)`;
    case "missing":
      return problem.from === problem.to
        ? `record ${problem.from} is missing`
        : `records ${problem.from}..${problem.to} are missing`;
    case "tail_missing":
      return problem.from === problem.to
        ? `record ${problem.from} is missing (it was the newest)`
        : `records ${problem.from}..${problem.to} are missing (they were the newest)`;
    case "out_of_order":
      return `record ${problem.seq} is out of order (it comes after record ${problem.after})`;
    case "duplicate":
      return `record ${problem.seq} appears twice`;
    case "foreign":
      return `record ${problem.seq} does not belong here: ${problem.reason}`;
  }
}

export interface VerifyOptions {
  /**
   * The records start wherever they start (an export `since` a time): the front is not checked
   * against the anchor. Default: they must start right after the pruned prefix.
   */
  partialFront?: boolean;
  /** The records stop before the head (an export cut by a limit): the tail is not checked. */
  partialTail?: boolean;
  /** The most problems kept (the rest are only counted), so a wrecked chain stays printable. */
  maxProblems?: number;
}

export interface VerifyResult {
  ok: boolean;
  tenantId: string;
  /** Records read (accepted into the chain or not). */
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  problems: ChainProblem[];
  /** Problems found beyond maxProblems. */
  moreProblems: number;
}

const DEFAULT_MAX_PROBLEMS = 1000;

/**
 * Checks records one at a time, in the order given, keeping only the previous record: a chain of
 * any length is verified in constant memory as an export streams in.
 */
export class ChainVerifier {
  readonly #anchor: AuditAnchor;
  readonly #options: VerifyOptions;
  readonly #problems: ChainProblem[] = [];
  #moreProblems = 0;
  #count = 0;
  #first: number | null = null;
  /** Where the chain stands: the last record accepted, or the anchor before any was. */
  #prev: { seq: number; hash: string; record: boolean } | null;

  constructor(anchor: AuditAnchor, options: VerifyOptions = {}) {
    this.#anchor = anchor;
    this.#options = options;
    this.#prev = options.partialFront
      ? null
      : { seq: anchor.pruned_through_seq, hash: anchor.pruned_through_hash, record: false };
  }

  add(record: AuditRecord): void {
    this.#count++;
    this.#first ??= record.seq;
    if (record.tenant_id !== this.#anchor.tenant_id) {
      this.#problem({
        kind: "foreign",
        seq: record.seq,
        reason: `it is of tenant "${record.tenant_id}", not "${this.#anchor.tenant_id}"`,
      });
      return;
    }
    if (!Number.isSafeInteger(record.seq) || record.seq < 1) {
      this.#problem({ kind: "foreign", seq: record.seq, reason: "its seq is not a count" });
      return;
    }
    if (record.seq > this.#anchor.head_seq) {
      this.#problem({
        kind: "foreign",
        seq: record.seq,
        reason: `it is past the head (record ${this.#anchor.head_seq})`,
      });
      return;
    }
    const prev = this.#prev;
    if (prev && record.seq === prev.seq && prev.record) {
      this.#problem({ kind: "duplicate", seq: record.seq });
      return;
    }
    if (prev && record.seq <= prev.seq) {
      this.#problem({ kind: "out_of_order", seq: record.seq, after: prev.seq });
      return;
    }
    const intact = recordHash(record.prev_hash, record) === record.hash;
    if (!intact) this.#problem({ kind: "edited", seq: record.seq });
    if (prev && record.seq > prev.seq + 1) {
      this.#problem({ kind: "missing", from: prev.seq + 1, to: record.seq - 1 });
    } else if (prev && intact && record.prev_hash !== prev.hash) {
      // This record is whole but was chained to something else than what now precedes it: the
      // one before it was replaced, content and hash both (or the anchor was, for the first).
      this.#problem(
        prev.record ? { kind: "rewritten", seq: prev.seq } : {
          kind: "foreign",
          seq: record.seq,
          reason: prev.seq === 0
            ? "it is not chained to the start of the chain"
            : `it is not chained to the last pruned record (${prev.seq})`,
        },
      );
    }
    this.#prev = { seq: record.seq, hash: record.hash, record: true };
  }

  /**
   * The verdict. `partialTail` may be decided only now (an export says it was cut by its limit
   * in its last line, after the records).
   */
  finish(late: Pick<VerifyOptions, "partialTail"> = {}): VerifyResult {
    const head = this.#anchor;
    const last = this.#prev;
    const partialTail = late.partialTail ?? this.#options.partialTail;
    // With a partial front and nothing read, there is nothing to hold the head against.
    if (!partialTail && last) {
      if (last.seq < head.head_seq) {
        this.#problem({ kind: "tail_missing", from: last.seq + 1, to: head.head_seq });
      } else if (last.hash !== head.head_hash) {
        if (!last.record) {
          this.#problem({
            kind: "foreign",
            seq: head.head_seq,
            reason: "the head and the pruning anchor disagree about the last record",
          });
        } else if (!this.#problems.some((p) => p.kind === "edited" && p.seq === last.seq)) {
          // The newest record is whole but is not the one the head names.
          this.#problem({ kind: "rewritten", seq: last.seq });
        }
      }
    }
    return {
      ok: this.#problems.length === 0 && this.#moreProblems === 0,
      tenantId: head.tenant_id,
      records: this.#count,
      firstSeq: this.#first,
      lastSeq: last?.record ? last.seq : null,
      problems: [...this.#problems],
      moreProblems: this.#moreProblems,
    };
  }

  #problem(problem: ChainProblem): void {
    if (this.#problems.length < (this.#options.maxProblems ?? DEFAULT_MAX_PROBLEMS)) {
      this.#problems.push(problem);
    } else {
      this.#moreProblems++;
    }
  }
}

/** Verifies a whole chain held in memory (tests, small exports). */
export function verifyChain(
  records: Iterable<AuditRecord>,
  anchor: AuditAnchor,
  options: VerifyOptions = {},
): VerifyResult {
  const verifier = new ChainVerifier(anchor, options);
  for (const record of records) verifier.add(record);
  return verifier.finish();
}
