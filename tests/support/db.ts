// One switch for every suite that needs a database: with AEGIS_TEST_PG_DSN (an admin DSN, e.g.
// from scripts/ci_postgres.sh) each caller gets a fresh, throwaway PostgreSQL database; without
// it, an in-memory PGlite. Suites put TEST_DB_KIND in test names so reports say which ran.
import postgres from "postgres";
import { type Db, openDb } from "../../controller/store/db.ts";

const ADMIN_DSN = Deno.env.get("AEGIS_TEST_PG_DSN") || undefined;

export const TEST_DB_KIND: "pglite" | "postgres" = ADMIN_DSN ? "postgres" : "pglite";

export interface TestDatabase {
  kind: "pglite" | "postgres";
  /** The fresh database's DSN (postgres only); end-to-end tests hand it to the controller. */
  dsn?: string;
  /** Opens (and migrates) a Db on it; cleanup() closes every Db opened this way. */
  open(): Promise<Db>;
  cleanup(): Promise<void>;
}

export async function testDatabase(): Promise<TestDatabase> {
  // Opens still in flight are tracked too: a pool that finishes connecting after cleanup()
  // would otherwise leak, or race the DROP DATABASE below.
  const opening: Promise<Db>[] = [];
  const closeAll = async () => {
    const settled = await Promise.allSettled(opening.splice(0));
    await Promise.all(
      settled.map((s) => s.status === "fulfilled" && s.value.close().catch(() => {})),
    );
  };
  const track = (db: Promise<Db>) => {
    opening.push(db);
    return db;
  };
  if (!ADMIN_DSN) {
    return {
      kind: "pglite",
      open: () => track(openDb({ memory: true })),
      cleanup: closeAll,
    };
  }
  // Random and identifier-safe, so interpolating it into DDL is fine.
  const name = `aegis_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const adminDsn = ADMIN_DSN;
  await admin(adminDsn, (sql) => sql.unsafe(`CREATE DATABASE ${name}`));
  const url = new URL(adminDsn);
  url.pathname = `/${name}`;
  const dsn = url.toString();
  return {
    kind: "postgres",
    dsn,
    open: () => track(openDb({ dsn })),
    async cleanup() {
      await closeAll();
      // FORCE: a test that leaked a pool (or a controller under test) must not keep it alive.
      await admin(adminDsn, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function admin(dsn: string, fn: (sql: postgres.Sql) => Promise<unknown>): Promise<void> {
  const sql = postgres(dsn, { max: 1, onnotice: () => {} });
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
