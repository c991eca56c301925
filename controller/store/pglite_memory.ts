// In-memory PGlite for tests. A fresh PGlite runs initdb in WebAssembly, which costs seconds;
// restoring a tarball of an already-initialised, already-migrated cluster costs a fraction of
// that. So the first open in a process builds that tarball and every open restores it; the
// migrator then finds nothing to do.
import { PGlite } from "@electric-sql/pglite";
import { type MigratableDb, migrate, type ScriptTx } from "./migrations.ts";

let template: Promise<Blob> | undefined;

export async function createMemoryPglite(): Promise<PGlite> {
  template ??= buildTemplate().catch((error) => {
    template = undefined; // let the next caller retry rather than inherit one failure forever
    throw error;
  });
  return await PGlite.create({ loadDataDir: await template });
}

async function buildTemplate(): Promise<Blob> {
  const pg = await PGlite.create();
  try {
    await migrate(raw(pg));
    return await pg.dumpDataDir("none");
  } finally {
    await pg.close();
  }
}

/** Just enough of a Db for the migrator, without the adapter's guards. */
function raw(pg: PGlite): MigratableDb {
  return {
    query: async <T>(sql: string, params?: unknown[]) => (await pg.query<T>(sql, params)).rows,
    transaction: <T>(fn: (tx: ScriptTx) => Promise<T>) =>
      pg.transaction((tx) =>
        fn({
          query: async <R>(sql: string, params?: unknown[]) =>
            (await tx.query<R>(sql, params)).rows,
          exec: async (script) => void await tx.exec(script),
        })
      ),
  };
}
