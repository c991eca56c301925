// The tool_calls history rows, written through a group-commit queue (batch_writer.ts): every
// start and every end queued while the previous flush ran is written by at most two statements
// (one INSERT of the new rows, one UPDATE of the ended ones), in the order they were queued. A
// call that starts and ends within one batch is inserted already ended.
//
// What is promised (tests/faults/pglite_kill_test.ts checks it against SIGKILL): a call whose
// start the caller was told of has its row, and a call whose end the caller was told of has its
// final status, because ToolCallService awaits the flush holding each before telling. Rows still
// "running" when a relay stops are marked interrupted when it starts again (interruptOrphans).
// Not promised: a relay killed after a call was sent to the node but before its start row
// committed (the call travels while the row is written: a fraction of a millisecond when the
// database is idle, one flush under load) leaves no row for that call; its caller was told
// nothing either. A failed statement fails every row of its batch, each caller hears it.
import type { Queryable } from "../store/db.ts";
import { BatchWriter } from "./batch_writer.ts";

export interface CallStart {
  call_id: string;
  node_id: string;
  tenant_id: string;
  tool: string;
  summary: string;
  /** The recorded (redacted) arguments, as JSON text. */
  arguments: string;
  requested_by: string;
  relay_id: string;
  started_at: Date;
}

export interface CallEnd {
  call_id: string;
  status: string;
  exit_code: number | null;
  error: string | null;
  finished_at: Date;
  duration_ms: number;
  output_bytes: number;
  truncated: boolean;
}

type Row = { start: CallStart } | { end: CallEnd };

/** jsonb_to_recordset column lists: the batch travels as one JSON parameter, nulls and all. */
const START_COLUMNS = `call_id text, node_id text, tenant_id text, tool text, summary text,
  arguments jsonb, requested_by text, relay_id text, status text, started_at timestamptz,
  exit_code integer, error text, finished_at timestamptz, duration_ms integer,
  output_bytes integer, truncated boolean`;
const END_COLUMNS = `call_id text, status text, exit_code integer, error text,
  finished_at timestamptz, duration_ms integer, output_bytes integer, truncated boolean`;

export class CallRecords {
  readonly #writer: BatchWriter<Row>;

  constructor(private readonly db: Queryable) {
    this.#writer = new BatchWriter((rows) => this.#flush(rows));
  }

  /** Resolves once the call's row is committed as running. */
  started(start: CallStart): Promise<void> {
    return this.#writer.write({ start });
  }

  /** Resolves once the call's final status is committed (after its start: rows keep order). */
  ended(end: CallEnd): Promise<void> {
    return this.#writer.write({ end });
  }

  /** Resolves once everything queued so far was written. */
  drain(): Promise<void> {
    return this.#writer.drain();
  }

  async #flush(rows: Row[]): Promise<void> {
    const starts = new Map<string, Record<string, unknown>>();
    const ends: CallEnd[] = [];
    for (const row of rows) {
      if ("start" in row) {
        starts.set(row.start.call_id, {
          ...row.start,
          arguments: JSON.parse(row.start.arguments),
          status: "running",
        });
        continue;
      }
      const start = starts.get(row.end.call_id);
      // Started in this batch: inserted already ended, one row instead of an INSERT and UPDATE.
      if (start) Object.assign(start, row.end);
      else ends.push(row.end);
    }
    if (starts.size > 0) {
      await this.db.query(
        `INSERT INTO tool_calls (call_id, node_id, tenant_id, tool, summary, arguments,
                                 requested_by, relay_id, status, started_at, exit_code, error,
                                 finished_at, duration_ms, output_bytes, truncated)
         SELECT call_id, node_id, tenant_id, tool, summary, arguments, requested_by, relay_id,
                status, started_at, exit_code, error, finished_at, duration_ms,
                coalesce(output_bytes, 0), coalesce(truncated, false)
           FROM jsonb_to_recordset($1::jsonb) AS r(${START_COLUMNS})`,
        [JSON.stringify([...starts.values()])],
      );
    }
    if (ends.length === 1) {
      // The usual batch when calls are not many at once, and the statement a caller waits on
      // before hearing how its call ended: a plain UPDATE by primary key costs a quarter of the
      // jsonb_to_recordset join below on PGlite (0.14 vs 0.6 ms), two thirds on PostgreSQL.
      const end = ends[0];
      await this.db.query(
        `UPDATE tool_calls SET status = $2, exit_code = $3, error = $4, finished_at = $5,
                duration_ms = $6, output_bytes = $7, truncated = $8
          WHERE call_id = $1`,
        [
          end.call_id,
          end.status,
          end.exit_code,
          end.error,
          end.finished_at,
          end.duration_ms,
          end.output_bytes,
          end.truncated,
        ],
      );
    } else if (ends.length > 0) {
      // The planner guesses 100 rows for jsonb_to_recordset, so joined on call_id alone it hashes
      // the batch and scans the whole history table for every batch: one call's final status
      // cost time in proportion to the history kept. Naming the call ids as an array (an
      // InitPlan) makes it look them up through the primary key instead.
      await this.db.query(
        `UPDATE tool_calls t SET status = r.status, exit_code = r.exit_code, error = r.error,
                finished_at = r.finished_at, duration_ms = r.duration_ms,
                output_bytes = r.output_bytes, truncated = r.truncated
           FROM jsonb_to_recordset($1::jsonb) AS r(${END_COLUMNS})
          WHERE t.call_id = ANY(ARRAY(SELECT e->>'call_id' FROM jsonb_array_elements($1::jsonb) e))
            AND t.call_id = r.call_id`,
        [JSON.stringify(ends)],
      );
    }
  }
}
