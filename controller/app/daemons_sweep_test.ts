import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { DaemonRepository, streamKey } from "./daemons.ts";

Deno.test(`[${TEST_DB_KIND}] credentialStates() reads every stream's record in one batch`, async () => {
  const db = await testDatabase();
  try {
    const store = await db.open();
    const now = new Date();
    for (const [node, status] of [["n-a", "connected"], ["n-b", "revoked"]]) {
      await store.query(
        `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
                                   status_since, token_jti)
         VALUES ($1, 't', $1, 'pk', 'SHA256:k', $2, $3, $4)`,
        [node, status, now, `${node}-jti`],
      );
    }
    await store.query(
      `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES ('old', 'n-a', 'refreshed', $1)`,
      [now],
    );
    const daemons = new DaemonRepository(store, () => now);
    const states = await daemons.credentialStates([
      { nodeId: "n-a", jti: "n-a-jti", fingerprint: "SHA256:k" },
      { nodeId: "n-a", jti: "old", fingerprint: "SHA256:k" },
      { nodeId: "n-b", jti: "n-b-jti", fingerprint: "SHA256:k" },
      { nodeId: "n-gone", jti: "x", fingerprint: "SHA256:k" },
    ]);
    assert.equal(states.get(streamKey("n-a", "n-a-jti"))?.token_revoked_at, null);
    assert.ok(states.get(streamKey("n-a", "old"))?.token_revoked_at instanceof Date);
    assert.equal(states.get(streamKey("n-b", "n-b-jti"))?.status, "revoked");
    assert.equal(states.has(streamKey("n-gone", "x")), false);
  } finally {
    await db.cleanup();
  }
});
