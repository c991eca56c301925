import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { AegisError } from "../../shared/errors.ts";
import type { OperatorClaims } from "../../shared/tokens/claims.ts";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { TokenAuthority } from "./tokens.ts";
import { OperatorTokenCache } from "./operator_token_cache.ts";

const claims = (exp: number): OperatorClaims => ({
  iss: "t",
  sub: "alice",
  exp,
  tenant_id: "team-a",
  aegis_role: "operator",
  tenants: [],
});

async function authority(clock: { now: Date }) {
  const dir = await Deno.makeTempDir();
  const key = await loadOrCreateSigningKey(`${dir}/signing-key.jwk`);
  const tokens = new TokenAuthority(key, "aegis-test", () => clock.now);
  const token = await tokens.issueOperator({
    subject: "alice",
    tenantId: "team-a",
    role: "operator",
    ttlSecs: 600,
  });
  return { dir, tokens, token, jti: decodeJwt(token).jti as string };
}

Deno.test("verifyOperator() refuses a revoked token that was cached", async () => {
  const clock = { now: new Date() };
  const { dir, tokens, token, jti } = await authority(clock);
  try {
    assert.equal((await tokens.verifyOperator(token)).sub, "alice");
    assert.equal(tokens.operatorTokens.size, 1, "the verified token is cached");
    tokens.revokeOperator(jti, new Date(clock.now.getTime() + 600_000));
    assert.equal(tokens.operatorTokens.size, 0);
    await assert.rejects(
      tokens.verifyOperator(token),
      (e) => e instanceof AegisError && e.code === "UNAUTHENTICATED" && /revoked/.test(e.message),
    );
    // Once the token has expired anyway the id is forgotten; the token is refused as expired.
    clock.now = new Date(clock.now.getTime() + 3_600_000);
    await assert.rejects(
      tokens.verifyOperator(token),
      (e) => e instanceof AegisError && /expired/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verifyOperator() checks a cached token in full again once it expired", async () => {
  const clock = { now: new Date() };
  const { dir, tokens, token } = await authority(clock);
  try {
    await tokens.verifyOperator(token);
    // Past exp and the leeway: the cache entry is not used, and the full check refuses it.
    clock.now = new Date(clock.now.getTime() + 600_000 + 121_000);
    await assert.rejects(
      tokens.verifyOperator(token),
      (e) => e instanceof AegisError && e.code === "UNAUTHENTICATED",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("OperatorTokenCache keeps an entry until exp, at most maxAgeMs", () => {
  const cache = new OperatorTokenCache({ maxAgeMs: 1000 });
  cache.set("a", claims(100), "j-a", 50_000); // exp 100 s: 50 s left, capped at 1 s
  assert.ok(cache.get("a", 50_999));
  assert.equal(cache.get("a", 51_000), undefined);
  cache.set("b", claims(100), "j-b", 99_500); // 0.5 s left
  assert.equal(cache.get("b", 100_000), undefined);
  cache.set("c", claims(100), "j-c", 100_000); // already expired: not kept
  assert.equal(cache.size, 0);
});

Deno.test("OperatorTokenCache drops the least recently used entry past maxEntries", () => {
  const cache = new OperatorTokenCache({ maxEntries: 2 });
  cache.set("a", claims(100), "j-a", 0);
  cache.set("b", claims(100), "j-b", 0);
  assert.ok(cache.get("a", 1)); // a is now the most recently used
  cache.set("c", claims(100), "j-c", 0);
  assert.ok(cache.get("a", 1));
  assert.equal(cache.get("b", 1), undefined);
  assert.ok(cache.get("c", 1));
});

Deno.test("OperatorTokenCache forgets a revoked id once its token expired", () => {
  const cache = new OperatorTokenCache();
  cache.revoke("j-a", 10_000);
  assert.ok(cache.isRevoked("j-a", 9_999));
  cache.set("a", claims(100), "j-a", 0);
  assert.equal(cache.get("a", 1), undefined, "a revoked token is not cached");
  assert.equal(cache.isRevoked("j-a", 10_000), false);
  assert.equal(cache.isRevoked("", 0), false);
});
