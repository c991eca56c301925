import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { TEST_DB_KIND } from "../../tests/support/db.ts";
import { openDb } from "./db.ts";

async function openError(dsn: string): Promise<AegisError> {
  const error = await openDb({ dsn }).catch((e) => e);
  assert.ok(error instanceof AegisError, `expected an AegisError, got ${error}`);
  return error;
}

// Port 1 on loopback refuses at once, so this needs no server.
Deno.test("openDb() reports a PostgreSQL it cannot reach without leaking the password", async () => {
  const error = await openError("postgres://aegis:s3cret-pw@127.0.0.1:1/fleet");
  assert.equal(error.code, "UNREACHABLE");
  assert.match(error.message, /^cannot reach PostgreSQL at 127\.0\.0\.1:1\/fleet: .*ECONNREFUSED/);
  assert.doesNotMatch(JSON.stringify(error.toJSON()) + error.message, /s3cret|aegis:/);
});

Deno.test("openDb() refuses a DSN that is not a URL without echoing it", async () => {
  const error = await openError("host=db password=s3cret-pw dbname=fleet");
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(error.cause, undefined, "the URL parser's error quotes its input");
  assert.doesNotMatch(error.message, /s3cret/);
});

Deno.test({
  name: "openDb() reports a missing PostgreSQL database as unreachable",
  ignore: TEST_DB_KIND !== "postgres",
  async fn() {
    const url = new URL(Deno.env.get("AEGIS_TEST_PG_DSN")!);
    url.pathname = "/aegis_no_such_db";
    const error = await openError(url.toString());
    assert.equal(error.code, "UNREACHABLE");
    assert.match(error.message, /\/aegis_no_such_db: database "aegis_no_such_db" does not exist$/);
  },
});
