// The PostgreSQL adapter (postgres.js), for controllers that share one database, e.g. several
// relays behind a load balancer. Its type handling is bent to match PGlite's; see db.ts.
import postgres from "postgres";
import { AegisError } from "../../shared/errors.ts";
import type { AdapterDb } from "./db.ts";
import type { ScriptTx } from "./migrations.ts";
import { describeTarget, outageAs, unreachable } from "./postgres_errors.ts";
import { safeTransaction } from "./postgres_tx.ts";
import { checkChannel, checkParams, plainRows, safeListener } from "./shape.ts";
import { parseTextArray, serializeTextArray } from "./text_array.ts";
import { TxGuard } from "./tx_guard.ts";

const serializeJson = (x: unknown) => typeof x === "string" ? x : JSON.stringify(x);

const TYPES = {
  // Callers pass JSON already stringified; postgres.js would stringify it again into a JSON
  // string scalar. Strings therefore go through untouched, as PGlite does.
  json: {
    to: 114,
    from: [114, 3802],
    serialize: serializeJson,
    parse: (x: string) => JSON.parse(x),
  },
  jsonb: { to: 3802, from: [3802], serialize: serializeJson, parse: (x: string) => JSON.parse(x) },
  // PGlite parses int8 to number; postgres.js would give a string.
  int8: {
    to: 20,
    from: [20],
    serialize: (x: unknown) => String(x),
    parse: (x: string) => Number(x),
  },
  // Both parse and serialize are set, so postgres.js keeps its own (NULL-unaware) array code off.
  textArray: { to: 1009, from: [1009, 1015], serialize: serializeTextArray, parse: parseTextArray },
};

type Sql = postgres.Sql<Record<string, unknown>>;

// Without params postgres.js switches to the simple protocol, which allows several statements
// and returns an array of results. Forcing the extended one keeps query() at one statement, as
// on PGlite. (`simple` is a real option that the .d.ts does not declare.)
const EXTENDED = { simple: false } as unknown as postgres.UnsafeQueryOptions;

/**
 * Seconds before a connection that failed is tried again. postgres.js's default grows as
 * 3^failures / 100 up to 20 s, counted over the whole pool and reset only by a success: after an
 * outage of a few seconds under load, a query then waited up to 20 s for its connection's turn
 * (long after the server was back, or before failing while it was still down), and the LISTEN
 * connection came back as late, so notifications sent meanwhile were lost. Reconnecting costs a
 * refused TCP connect while the server is down, and happens only for queued queries (and the
 * one LISTEN connection): at most once a second per connection.
 */
export function reconnectDelaySecs(failures: number): number {
  return Math.min(0.05 * 2 ** failures, 1) * (0.5 + Math.random() / 2);
}

export async function openPostgres(dsn: string): Promise<AdapterDb> {
  let sql: Sql;
  try {
    sql = postgres(dsn, {
      max: 10,
      connect_timeout: 10,
      backoff: reconnectDelaySecs,
      onnotice: () => {}, // "relation already exists, skipping" and friends are not news
      types: TYPES,
      connection: { application_name: "aegis-controller" },
    }) as unknown as Sql;
  } catch {
    // Neither the DSN nor the parser's error (which quotes it) may surface: it may hold a password.
    throw new AegisError("INVALID_ARGUMENT", "the PostgreSQL DSN is not a valid postgres:// URL");
  }
  const target = describeTarget(sql.options);
  try {
    // postgres.js connects lazily; fail here, with a clear message, rather than on first use.
    await sql.unsafe("SELECT 1");
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw unreachable(target, error);
  }
  return adapter(sql, target);
}

function adapter(sql: Sql, target: string): AdapterDb {
  const guard = new TxGuard();
  const wrap = outageAs(target);
  const run = async <T>(q: Sql, text: string, params?: unknown[]) => {
    try {
      const args = checkParams(params) as postgres.ParameterOrJSON<never>[];
      const rows = await q.unsafe(text, args, EXTENDED);
      return plainRows<T>(rows);
    } catch (error) {
      throw wrap(error);
    }
  };
  let closed = false;
  return {
    kind: "postgres",
    query<T>(text: string, params?: unknown[]) {
      guard.assertOutside("query");
      return run<T>(sql, text, params);
    },
    async transaction<T>(fn: (tx: ScriptTx) => Promise<T>): Promise<T> {
      guard.assertOutside("transaction");
      try {
        // sql.begin() alone would write its ROLLBACK to a connection that closed, which
        // crashes the process: safeTransaction keeps it off a dead connection.
        return await safeTransaction(sql, EXTENDED, (tx) =>
          guard.inside(() =>
            fn({
              query: async <R>(text: string, params?: unknown[]) => {
                const args = checkParams(params) as postgres.ParameterOrJSON<never>[];
                try {
                  return plainRows<R>(await tx.query(text, args));
                } catch (error) {
                  throw wrap(error);
                }
              },
              exec: async (script) => {
                try {
                  await tx.script(script);
                } catch (error) {
                  throw wrap(error);
                }
              },
            })
          ));
      } catch (error) {
        throw wrap(error); // the caller's own error object comes back unchanged
      }
    },
    async listen(channel, onPayload, onReconnect) {
      guard.assertOutside("listen");
      checkChannel(channel);
      const deliver = safeListener(channel, onPayload);
      const reconnected = safeListener(channel, () => onReconnect?.());
      // postgres.js re-issues LISTEN on a new connection when the old one closes and calls
      // onlisten each time it succeeds; every call after the first is a reconnect.
      let listens = 0;
      const onlisten = () => {
        if (listens++ > 0 && !closed) guard.outside(() => reconnected(""));
      };
      try {
        const { unlisten } = await sql.listen(
          channel,
          (p) => guard.outside(() => deliver(p)),
          onlisten,
        );
        let stopped = false;
        return async () => {
          if (stopped || closed) return;
          stopped = true;
          await unlisten();
        };
      } catch (error) {
        throw wrap(error);
      }
    },
    async notify(channel, payload) {
      guard.assertOutside("notify");
      checkChannel(channel);
      await sql.notify(channel, payload).catch((error) => Promise.reject(wrap(error)));
    },
    async close() {
      if (closed) return;
      closed = true;
      await sql.end({ timeout: 5 });
    },
  };
}
