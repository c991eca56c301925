// The PostgreSQL adapter while its server restarts or is down for seconds, under load: the
// process must survive (postgres.js used to crash it from a timer when a transaction's ROLLBACK
// went to a closed connection), every operation must end (no hang) with a result or UNREACHABLE,
// transactions stay atomic, and once the server is back, queries and LISTEN are back within
// about a second (not after postgres.js's default backoff of up to 20 s).
// A private server (tests/support/private_postgres.ts): the shared one must never be restarted.
import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import {
  type PrivatePostgres,
  privatePostgresUnavailable,
  startPrivatePostgres,
} from "../../tests/support/private_postgres.ts";
import { type Db, openDb } from "./db.ts";

const unavailable = privatePostgresUnavailable();
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: unavailable !== undefined };
if (unavailable) console.warn(`postgres_outage_test skipped: ${unavailable}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function firstSuccess(db: Db): Promise<number> {
  const started = performance.now();
  while (true) {
    try {
      await db.query("SELECT 1");
      return performance.now() - started;
    } catch {
      await sleep(20);
    }
  }
}

interface Load {
  stop(): Promise<{ ok: number; errors: Map<string, number>; slowestMs: number }>;
}

/** Transactions (two writes that must stay together) and plain writes, 8 at a time. */
function load(db: Db): Load {
  let running = true;
  let ok = 0;
  let slowestMs = 0;
  const errors = new Map<string, number>();
  const worker = async (i: number) => {
    while (running) {
      const started = performance.now();
      try {
        if (i % 2) {
          await db.query("UPDATE counters SET n = n + 1 WHERE name = 'plain'");
        } else {
          await db.transaction(async (tx) => {
            await tx.query("UPDATE counters SET n = n + 1 WHERE name = 'a'");
            await tx.query("SELECT pg_sleep(0.02)");
            await tx.query("UPDATE counters SET n = n + 1 WHERE name = 'b'");
          });
        }
        ok++;
      } catch (error) {
        const code = error instanceof AegisError ? error.code : `raw ${String(error)}`;
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
      slowestMs = Math.max(slowestMs, performance.now() - started);
      await sleep(10);
    }
  };
  const workers = Array.from({ length: 8 }, (_, i) => worker(i));
  return {
    async stop() {
      running = false;
      // Every operation ends: a hang fails here instead of holding the suite.
      const ended = await Promise.race([
        Promise.all(workers).then(() => true),
        sleep(20_000).then(() => false),
      ]);
      assert.ok(ended, "an operation never ended");
      return { ok, errors, slowestMs };
    },
  };
}

async function withServer(fn: (pg: PrivatePostgres, db: Db) => Promise<void>): Promise<void> {
  const pg = await startPrivatePostgres();
  let db: Db | undefined;
  try {
    db = await openDb({ dsn: pg.dsn });
    await db.query("CREATE TABLE counters (name text PRIMARY KEY, n int NOT NULL)");
    await db.query("INSERT INTO counters VALUES ('a', 0), ('b', 0), ('plain', 0)");
    await fn(pg, db);
  } finally {
    await db?.close().catch(() => {});
    await pg.cleanup();
  }
}

Deno.test(
  "PostgreSQL restarted or stopped under transactions: no crash, no hang, UNREACHABLE, back at once",
  opts,
  async () => {
    await withServer(async (pg, db) => {
      for (const outage of ["restart", "stop 3 s"] as const) {
        const running = load(db);
        await sleep(500);
        if (outage === "restart") {
          await pg.restart("fast");
        } else {
          await pg.stop("fast");
          await sleep(3000);
          await pg.start();
        }
        const backMs = await firstSuccess(db);
        await sleep(500);
        const { ok, errors, slowestMs } = await running.stop();
        console.log(
          `${outage}: ${ok} operations ok, failures ${JSON.stringify([...errors])}, ` +
            `slowest ${slowestMs.toFixed(0)} ms; a query worked ${backMs.toFixed(0)} ms after`,
        );
        assert.deepEqual([...errors.keys()].filter((code) => code !== "UNREACHABLE"), []);
        assert.ok(errors.size > 0, "the outage was felt");
        assert.ok(backMs < 2000, `the first query after the server was back took ${backMs} ms`);
        assert.ok(slowestMs < 5000, `an operation took ${slowestMs} ms`);
        // Every transaction either happened whole or not at all.
        const rows = await db.query<{ name: string; n: number }>(
          "SELECT name, n FROM counters ORDER BY name",
        );
        assert.equal(rows[0].n, rows[1].n, JSON.stringify(rows));
        assert.ok(rows[0].n > 0 && rows[2].n > 0);
      }
    });
  },
);

Deno.test(
  "after a 5 s outage with queries failing all along, LISTEN and queries are back within 2 s",
  opts,
  async () => {
    await withServer(async (pg, db) => {
      const listener = await openDb({ dsn: pg.dsn });
      try {
        const got: string[] = [];
        let reconnects = 0;
        await listener.listen("outage_test", (p) => got.push(p), () => reconnects++);
        await pg.stop("fast");
        // Health checks and requests keep failing meanwhile; each answers promptly.
        const downAt = performance.now();
        let slowest = 0;
        let failures = 0;
        while (performance.now() - downAt < 5000) {
          const started = performance.now();
          const error = await db.query("SELECT 1").then(() => undefined, (e) => e);
          assert.ok(error instanceof AegisError && error.code === "UNREACHABLE", String(error));
          failures++;
          slowest = Math.max(slowest, performance.now() - started);
          await sleep(100);
        }
        await pg.start();
        const back = performance.now();
        const queryMs = await firstSuccess(db);
        let seq = 0;
        while (!got.length && performance.now() - back < 30_000) {
          await db.notify("outage_test", `after-${seq++}`).catch(() => {});
          await sleep(100);
        }
        const listenMs = performance.now() - back;
        console.log(
          `${failures} queries failed while down (slowest ${slowest.toFixed(0)} ms); back: ` +
            `query after ${queryMs.toFixed(0)} ms, LISTEN after ${listenMs.toFixed(0)} ms`,
        );
        assert.ok(slowest < 1500, `a query took ${slowest} ms to fail while the server was down`);
        assert.ok(queryMs < 2000, `queries came back ${queryMs} ms after the server`);
        assert.ok(got.length > 0, "no notification after the outage");
        assert.ok(listenMs < 2500, `LISTEN came back ${listenMs} ms after the server`);
        assert.equal(reconnects, 1, "the listener was told it had been cut off");
      } finally {
        await listener.close();
      }
    });
  },
);
