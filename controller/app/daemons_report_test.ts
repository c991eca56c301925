import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { authView, DaemonRepository, lastErrorView } from "./daemons.ts";
import { REFRESH_GRACE_SECS } from "./tokens.ts";
import type { Db } from "../store/db.ts";

const NOW = new Date("2026-04-28T15:00:00.000Z");
const HOUR = 3600_000;

async function withRepository(fn: (daemons: DaemonRepository, store: Db) => Promise<void>) {
  const db = await testDatabase();
  try {
    const store = await db.open();
    await fn(new DaemonRepository(store, () => NOW), store);
  } finally {
    await db.cleanup();
  }
}

async function insert(
  store: Db,
  nodeId: string,
  status: string,
  tokenExpiresAt: Date | null,
) {
  await store.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
                               status_since, token_jti, token_expires_at)
     VALUES ($1, 't', $1, $1, 'SHA256:k', $2, $3, $4, $5)`,
    [nodeId, status, new Date(NOW.getTime() - HOUR), `${nodeId}-jti`, tokenExpiresAt],
  );
}

Deno.test(`[${TEST_DB_KIND}] a Hello's report is stored with the host and replaced by the next`, async () => {
  await withRepository(async (daemons, store) => {
    await insert(store, "n-a", "pending", new Date(NOW.getTime() + HOUR));
    const at = new Date(NOW.getTime() - 60_000);
    const info = { relayId: "r", remoteAddr: "127.0.0.1", capabilities: {}, labels: {} };
    assert.ok(
      await daemons.markConnected("n-a", {
        ...info,
        report: { lastError: "cannot reach ctl:443", lastErrorAt: at, failures: 5 },
      }),
    );
    const stored = await daemons.require("n-a");
    assert.deepEqual(lastErrorView(stored), {
      message: "cannot reach ctl:443",
      at: at.toISOString(),
    });
    assert.equal(stored.connect_failures, 5);
    // A daemon without a report (older, or nothing went wrong) clears it: the report is its word.
    assert.ok(await daemons.markConnected("n-a", info));
    const cleared = await daemons.require("n-a");
    assert.equal(lastErrorView(cleared), null);
    assert.equal(cleared.connect_failures, 0);
    assert.equal((await daemons.list("t"))[0].connect_failures, 0);
  });
});

Deno.test(`[${TEST_DB_KIND}] the controller's auth view: ok, token_expired, revoked`, async () => {
  await withRepository(async (daemons, store) => {
    await insert(store, "n-ok", "connected", new Date(NOW.getTime() + HOUR));
    await insert(store, "n-expired", "disconnected", new Date(NOW.getTime() - HOUR));
    await insert(
      store,
      "n-long-gone",
      "disconnected",
      new Date(NOW.getTime() - (REFRESH_GRACE_SECS * 1000 + HOUR)),
    );
    await insert(store, "n-revoked", "revoked", new Date(NOW.getTime() + HOUR));
    await insert(store, "n-blacklisted", "connected", new Date(NOW.getTime() + HOUR));
    await store.query(
      `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES ('n-blacklisted-jti', 'n-blacklisted', 'x', $1)`,
      [NOW],
    );
    const view = async (id: string) => authView(await daemons.require(id), NOW);
    const ok = await view("n-ok");
    assert.equal(ok.state, "ok");
    assert.equal(ok.token_expires, new Date(NOW.getTime() + HOUR).toISOString());
    const expired = await view("n-expired");
    assert.equal(expired.state, "token_expired");
    assert.match(expired.detail, /renews it with its key/);
    assert.match((await view("n-long-gone")).detail, /re-enroll/);
    assert.equal((await view("n-revoked")).state, "revoked");
    const blacklisted = await view("n-blacklisted");
    assert.equal(blacklisted.state, "revoked");
    assert.match(blacklisted.detail, /current token was revoked/);
    // list() reads the same.
    const states = Object.fromEntries(
      (await daemons.list("t")).map((r) => [r.node_id, authView(r, NOW).state]),
    );
    assert.equal(states["n-blacklisted"], "revoked");
    assert.equal(states["n-ok"], "ok");
  });
});
