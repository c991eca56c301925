// Transactions on PostgreSQL that survive the server going away under them.
//
// postgres.js (3.4.9) crashes the whole process when anything is written to a connection whose
// socket has closed: the write is queued with setImmediate and then dereferences the nulled
// socket, outside any promise (porsager/postgres#1154, #1208; unfixed upstream). The pool never
// writes to a closed connection, but a transaction does: when a query of `sql.begin()` fails
// because the server went away, begin writes its ROLLBACK to the dead connection (or its COMMIT,
// when the connection dropped while the callback did something else), and the controller died
// with "Cannot read properties of null (reading 'write')" on a PostgreSQL restart that caught a
// transaction. (`sql.reserve()` is no way out: a reservation queued while connections churn is
// dropped by the pool and never resolves.)
//
// So the callback given to begin is wrapped: once its connection is known to be gone, it never
// settles, and begin never gets to write anything. begin itself rejects as soon as the
// connection closes (it listens for that), so the caller gets the outage at once. Known gone:
//  - a query of the transaction failed with a connection error (the connection closes next), or
//  - begin settled (the close arrived while no query was running).
// Queries of the transaction run one at a time and none starts once the connection is gone: a
// late query would go to whatever the pool reconnected that connection object to, outside the
// transaction. If a connection error is not followed by the close (not seen, but not ruled
// out), the callback settles after LOST_GRACE_MS, so begin rolls back on the live connection
// rather than hold it forever.
import type postgres from "postgres";
import { isConnectionError } from "./postgres_errors.ts";

const LOST_GRACE_MS = 5000;

/** The transaction's queries, plus the raw script runner migrations need. */
export interface TxRunner {
  query(text: string, params: postgres.ParameterOrJSON<never>[]): Promise<unknown[]>;
  script(text: string): Promise<unknown>;
}

/** A query refused because the transaction's connection had closed: an outage, like postgres.js's. */
export class ConnectionLost extends Error {
  readonly code = "CONNECTION_CLOSED";
  constructor(cause: unknown) {
    super("the database connection closed during the transaction", { cause });
  }
}

/**
 * Runs fn inside BEGIN … COMMIT; rolls back and rethrows when fn throws. Errors come back as
 * postgres.js threw them (or ConnectionLost); the caller classifies them.
 */
export async function safeTransaction<T>(
  sql: postgres.Sql<Record<string, unknown>>,
  extended: postgres.UnsafeQueryOptions,
  fn: (tx: TxRunner) => Promise<T>,
): Promise<T> {
  let gone: unknown; // the error that showed the connection is gone
  let over = false; // begin settled: committed, rolled back, or its connection closed
  const outcome = sql.begin(async (tx) => {
    let chain: Promise<unknown> = Promise.resolve();
    const serial = <R>(send: () => Promise<R>): Promise<R> => {
      const next = chain.then(async () => {
        if (gone !== undefined || over) throw new ConnectionLost(gone);
        try {
          return await send();
        } catch (error) {
          if (isConnectionError(error)) gone ??= error;
          throw error;
        }
      });
      chain = next.catch(() => {});
      return next;
    };
    let settle: () => T;
    try {
      const result = await fn({
        query: (text, params) => serial(() => tx.unsafe(text, params, extended)),
        script: (text) => serial(() => tx.unsafe(text)),
      });
      settle = () => result;
    } catch (error) {
      settle = () => {
        throw error;
      };
    }
    await chain;
    if (gone === undefined && !over) return settle();
    // The connection closed (begin already rejected): begin must never write to it again.
    if (over) return await new Promise<never>(() => {});
    // A connection error: the close follows, and begin rejects then; if it does not, the
    // connection lives after all, and begin rolls back on it. Never a commit: a query of this
    // transaction failed, even if the callback caught that.
    return await new Promise<T>((_resolve, reject) => {
      const timer = setTimeout(() => reject(gone), LOST_GRACE_MS);
      outcome.finally(() => clearTimeout(timer)).catch(() => {});
    });
  });
  try {
    return await outcome as T;
  } finally {
    over = true;
  }
}
