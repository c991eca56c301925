// Named prepared statements for PGlite. PGlite runs Postgres on this process's JS thread, so
// everything a statement costs is controller CPU. `PGlite.query()` sends an unnamed statement
// each time: Parse, Describe, Bind, Describe, Execute and Sync, each a separate call into the
// WebAssembly module, with the text parsed and analysed anew. Here a statement is parsed once
// under a name (and its parameter types learnt then); every later run is one call into the
// module with Bind, Describe, Execute and Sync, which skips the parse and analysis and, for a
// generic plan, the planning. The results are parsed by PGlite's own parser, the parameters
// serialised by its own serializers, so rows and errors are what `query()` gives.
import { parse, type PGlite, protocol } from "@electric-sql/pglite";

const { serialize } = protocol;

/** Statements kept prepared; the least recently used is closed beyond this. */
const DEFAULT_CAPACITY = 256;

/** SQLSTATEs after which a prepared statement is gone or stale and must be prepared again. */
const STALE_STATEMENT = new Set([
  "26000", // invalid_sql_statement_name: the statement no longer exists
  "0A000", // feature_not_supported: "cached plan must not change result type" after DDL
]);

interface Statement {
  name: string;
  /** The parameter types Postgres inferred, for PGlite's serializers. */
  paramTypes: number[];
}

export class PreparedStatements {
  readonly #pg: PGlite;
  readonly #capacity: number;
  /** By SQL text, least recently used first (a Map keeps insertion order). */
  readonly #statements = new Map<string, Statement>();
  #nextId = 0;

  constructor(pg: PGlite, capacity = DEFAULT_CAPACITY) {
    this.#pg = pg;
    this.#capacity = capacity;
  }

  /**
   * Runs one statement. The caller holds PGlite's locks (see pglite.ts): this talks to the
   * backend directly. `inTransaction` skips the sync to the file system that PGlite also
   * leaves for the commit.
   */
  async run(sql: string, params: unknown[], inTransaction: boolean): Promise<unknown[]> {
    try {
      return await this.#run(sql, params, inTransaction);
    } catch (error) {
      // A statement gone stale (its table changed since it was prepared) did nothing; outside
      // a transaction it is simply prepared again, as query() would have done from scratch.
      // Inside one the error has aborted the transaction, so it goes to the caller.
      if (inTransaction || !isStale(error)) throw error;
      return await this.#run(sql, params, inTransaction);
    }
  }

  async #run(sql: string, params: unknown[], inTransaction: boolean): Promise<unknown[]> {
    const statement = await this.#statement(sql);
    const values = params.map((value, i) => this.#serialize(value, statement.paramTypes[i]));
    const message = concat([
      serialize.bind({ statement: statement.name, values }),
      serialize.describe({ type: "P" }),
      serialize.execute({}),
      serialize.sync(),
    ]);
    try {
      const { messages } = await this.#pg.execProtocol(message, { syncToFs: !inTransaction });
      return parse.parseResults(messages, this.#pg.parsers)[0]?.rows ?? [];
    } catch (error) {
      if (isStale(error)) {
        await this.#forget(sql, statement);
      }
      throw annotated(error, sql, params);
    }
  }

  async #statement(sql: string): Promise<Statement> {
    const cached = this.#statements.get(sql);
    if (cached) {
      // Most recently used goes last.
      this.#statements.delete(sql);
      this.#statements.set(sql, cached);
      return cached;
    }
    const name = `aegis_${this.#nextId++}`;
    const message = concat([
      serialize.parse({ name, text: sql }),
      serialize.describe({ type: "S", name }),
      serialize.sync(),
    ]);
    let messages;
    try {
      ({ messages } = await this.#pg.execProtocol(message, { syncToFs: false }));
    } catch (error) {
      throw annotated(error, sql, undefined);
    }
    const statement = { name, paramTypes: parse.parseDescribeStatementResults(messages) };
    this.#statements.set(sql, statement);
    if (this.#statements.size > this.#capacity) {
      const [oldestSql, oldest] = this.#statements.entries().next().value!;
      await this.#forget(oldestSql, oldest);
    }
    return statement;
  }

  /** Closes every prepared statement (the caller holds PGlite's query lock, as for run()). */
  async forgetAll(): Promise<void> {
    const statements = [...this.#statements];
    this.#statements.clear();
    if (statements.length === 0) return;
    await this.#pg.execProtocol(
      concat([
        ...statements.map(([, s]) => serialize.close({ type: "S", name: s.name })),
        serialize.sync(),
      ]),
      { syncToFs: false },
    );
  }

  async #forget(sql: string, statement: Statement): Promise<void> {
    if (this.#statements.get(sql) === statement) this.#statements.delete(sql);
    // Closing a statement that no longer exists is not an error in Postgres.
    await this.#pg.execProtocol(
      concat([serialize.close({ type: "S", name: statement.name }), serialize.sync()]),
      { syncToFs: false },
    );
  }

  /** As PGlite's query() does it: its serializer for the parameter's type, else the text. */
  #serialize(value: unknown, type: number | undefined): string | null {
    if (value === null || value === undefined) return null;
    const serializer = type === undefined ? undefined : this.#pg.serializers[type];
    return serializer ? serializer(value) : String(value);
  }
}

function isStale(error: unknown): boolean {
  return STALE_STATEMENT.has((error as { code?: string } | undefined)?.code ?? "");
}

/** The same annotations PGlite's query() puts on a DatabaseError. */
function annotated(error: unknown, sql: string, params: unknown[] | undefined): unknown {
  if (error && typeof error === "object" && "code" in error) {
    Object.assign(error, { query: sql, params, queryOptions: undefined });
  }
  return error;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
