// The embedded adapter: PGlite (Postgres compiled to WebAssembly) in this process, so a single
// controller needs no database server. It has exactly one connection; PGlite itself queues
// queries and holds everything else back while a transaction runs.
import { PGlite } from "@electric-sql/pglite";
import { join, resolve } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { ensureDir } from "../../shared/fs/atomic.ts";
import type { AdapterDb } from "./db.ts";
import type { ScriptTx } from "./migrations.ts";
import { type DataDirLock, lockDataDir } from "./pglite_lock.ts";
import { createMemoryPglite } from "./pglite_memory.ts";
import { PreparedStatements } from "./pglite_prepared.ts";
import { checkChannel, checkParams, plainRows, safeListener } from "./shape.ts";
import { TxGuard } from "./tx_guard.ts";

export type PgliteOptions = { dataDir: string; memory?: false } | { memory: true };

export async function openPglite(opts: PgliteOptions): Promise<AdapterDb> {
  if (opts.memory) return adapter(await createMemoryPglite(), undefined);
  const dataDir = resolve(opts.dataDir);
  await ensureDir(dataDir);
  const lock = await lockDataDir(dataDir);
  try {
    return adapter(await PGlite.create({ dataDir: join(dataDir, "pglite") }), lock);
  } catch (error) {
    await lock.release();
    const reason = error instanceof Error ? error.message : String(error);
    throw new AegisError("INTERNAL", `cannot open the embedded database in ${dataDir}: ${reason}`, {
      cause: error,
    });
  }
}

function adapter(pg: PGlite, lock: DataDirLock | undefined): AdapterDb {
  const guard = new TxGuard();
  // Every query runs as a named prepared statement (pglite_prepared.ts): PGlite's parse and
  // plan of a statement is this process's CPU, and the statements here are few and repeated.
  const prepared = new PreparedStatements(pg);
  let closed = false;
  return {
    kind: "pglite",
    async query<T>(sql: string, params?: unknown[]) {
      guard.assertOutside("query");
      const values = checkParams(params);
      // What query() checks first: a closed or closing PGlite refuses instead of running.
      await pg._checkReady();
      // The same two locks PGlite's own query() takes: the transaction lock, so the statement
      // never runs inside another caller's open transaction, then the query lock.
      const rows = await pg._runExclusiveTransaction(() =>
        pg.runExclusive(() => prepared.run(sql, values, false))
      );
      return plainRows<T>(rows);
    },
    transaction<T>(fn: (tx: ScriptTx) => Promise<T>): Promise<T> {
      guard.assertOutside("transaction");
      return pg.transaction((tx) =>
        guard.inside(() =>
          fn({
            // pg.transaction() holds the transaction lock for this callback; a statement only
            // takes the query lock, as tx.query() does.
            query: async <R>(sql: string, params?: unknown[]) => {
              // As tx.query(): a tx kept past its callback must not run outside the transaction.
              if (tx.closed) {
                throw new AegisError("INTERNAL", "a query on a transaction that already ended");
              }
              const values = checkParams(params);
              return plainRows<R>(
                await pg.runExclusive(() => prepared.run(sql, values, true)),
              );
            },
            // A script changes the schema (migrations): statements prepared before it may
            // no longer fit their tables, and inside a transaction a stale one cannot be
            // prepared again on the spot. Dropped here, they are prepared anew when next run.
            exec: async (script) => {
              await tx.exec(script);
              await pg.runExclusive(() => prepared.forgetAll());
            },
          })
        )
      );
    },
    // No onReconnect: PGlite runs in this process, so its listener is never cut off.
    async listen(channel, onPayload) {
      guard.assertOutside("listen");
      checkChannel(channel);
      const deliver = safeListener(channel, onPayload);
      const stop = await pg.listen(channel, (payload) => guard.outside(() => deliver(payload)));
      let stopped = false;
      return async () => {
        if (stopped || closed) return;
        stopped = true;
        await stop();
      };
    },
    async notify(channel, payload) {
      guard.assertOutside("notify");
      checkChannel(channel);
      await pg.query("SELECT pg_notify($1, $2)", [channel, payload]);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await pg.close();
      } finally {
        await lock?.release();
      }
    },
  };
}
