// The controller's storage port. Everything above this line speaks SQL through `Db`; below it an
// adapter speaks to either real PostgreSQL (postgres.js) or embedded PGlite. Both adapters hand
// back the same JS shapes for the same SQL, so code and tests written against one hold on the
// other. The rules that make that true:
//
//   Results   timestamptz → Date, jsonb/json → parsed value, text[] → string[] (NULL elements →
//             null), integer/smallint → number, boolean → boolean, text → string, NULL → null.
//             Rows are plain objects and results plain arrays (deepEqual-friendly).
//   int8      Avoid it in the schema (and bytea too). `count(*)`, `sum()` and friends return
//             int8, so callers MUST cast: `select count(*)::int as n`. Both adapters do parse
//             int8 to a JS number, but only so a forgotten cast is not a prod-only bug; values
//             past 2^53 lose precision.
//   Params    string, number, boolean, null, Date; JSON as `JSON.stringify(x)` with `$n::jsonb`;
//             string arrays as JS arrays with `$n::text[]`. `undefined` is refused: it is
//             always a bug upstream, and the drivers disagree about what it means.
//   Statements `query()` runs exactly one statement (extended protocol on both adapters).
//   Channels  lowercase identifiers (`[a-z_][a-z0-9_]*`, at most 63 chars): the drivers quote
//             and fold channel names differently, so only names where that cannot matter pass.
//   Errors    SQL errors come through unchanged, SQLSTATE in `.code` (e.g. "23505" for a
//             duplicate key). A PostgreSQL that cannot be reached is AegisError UNREACHABLE.
//   Transactions Inside `transaction(fn)` use only `tx`. Touching the outer `db` there would
//             deadlock PGlite (one connection) and silently escape the transaction on
//             PostgreSQL, so both adapters throw INTERNAL instead.
import { AegisError } from "../../shared/errors.ts";
import { migrate, type ScriptTx } from "./migrations.ts";
import { openPglite } from "./pglite.ts";
import { openPostgres } from "./postgres.ts";

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: "pglite" | "postgres";
  /** Commits when fn resolves; rolls back when it throws and rethrows the same error object. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Resolves once listening; the returned function stops it. onPayload must not throw.
   * onReconnect runs each time the listening connection is back after it was lost: anything
   * notified meanwhile is gone, so the caller reconciles from the tables. (PGlite runs in this
   * process and never loses it.)
   */
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    onReconnect?: () => void,
  ): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  /** Closes connections and, for PGlite, releases the data-dir lock. */
  close(): Promise<void>;
}

/** What an adapter hands openDb: a Db whose transactions can also run migration scripts. */
export interface AdapterDb extends Db {
  transaction<T>(fn: (tx: ScriptTx) => Promise<T>): Promise<T>;
}

export interface OpenDbOptions {
  /** postgres:// URL of a real server. Wins over dataDir and memory. */
  dsn?: string;
  /** Directory for the embedded database (kept in `<dataDir>/pglite`, locked by one process). */
  dataDir?: string;
  /** Embedded database in memory only, for tests; each open is a fresh, migrated copy. */
  memory?: boolean;
}

/** Opens the store and brings its schema up to date before anyone can use it. */
export async function openDb(opts: OpenDbOptions): Promise<Db> {
  let db;
  if (opts.dsn) db = await openPostgres(opts.dsn);
  else if (opts.memory) db = await openPglite({ memory: true });
  else if (opts.dataDir) db = await openPglite({ dataDir: opts.dataDir });
  else {
    throw new AegisError("INVALID_ARGUMENT", "no database configured", {
      hint: "Give a PostgreSQL DSN, or a data directory for the embedded database.",
    });
  }
  try {
    await migrate(db);
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  return db;
}
