import assert from "node:assert/strict";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { TokenAuthority } from "./tokens.ts";
import { RateLimiter } from "./rate_limit.ts";
import { NodeAuthenticator } from "./node_auth.ts";
import { EnrollmentService } from "./enrollment.ts";

const DAY_MS = 86400_000;

async function revokedJtis(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ jti: string }>(`SELECT jti FROM revoked_tokens ORDER BY jti`);
  return rows.map((r) => r.jti);
}

Deno.test(`[${TEST_DB_KIND}] pruneExpired() drops revoked tokens once they can no longer be presented`, async () => {
  const now = new Date("2026-03-01T00:00:00Z");
  const clock = () => now;
  const dir = await Deno.makeTempDir();
  const store = await testDatabase();
  const db = await store.open();
  try {
    const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/k.jwk`), "t", clock);
    const enrollment = new EnrollmentService(
      db,
      tokens,
      new RateLimiter(5, 60_000),
      new NodeAuthenticator(db, tokens, clock),
      {
        publicEndpoint: "h:1",
        enrollmentTtlSecs: 900,
        nodeTokenTtlSecs: 3600,
        clockSkewLeewaySecs: 300,
      },
      clock,
    );
    const revoke = (jti: string, expiresAt: Date) =>
      db.query(
        `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES ($1, 'n-1', 'test', $2)`,
        [jti, expiresAt],
      );
    await revoke("a-live", new Date(now.getTime() + DAY_MS));
    // Expired yesterday: still good for a refresh within the grace period, so still listed.
    await revoke("b-in-grace", new Date(now.getTime() - DAY_MS));
    await revoke("c-long-gone", new Date(now.getTime() - 30 * DAY_MS));
    await db.query(
      `INSERT INTO used_nonces (nonce, node_id, expires_at) VALUES ('old', 'n-1', $1), ('new', 'n-1', $2)`,
      [new Date(now.getTime() - 1000), new Date(now.getTime() + 60_000)],
    );

    await enrollment.pruneExpired();

    assert.deepEqual(await revokedJtis(db), ["a-live", "b-in-grace"]);
    const nonces = await db.query<{ nonce: string }>(`SELECT nonce FROM used_nonces`);
    assert.deepEqual(nonces.map((n) => n.nonce), ["new"]);
  } finally {
    await store.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
