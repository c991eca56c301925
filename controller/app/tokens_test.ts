import assert from "node:assert/strict";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { TokenAuthority } from "./tokens.ts";

async function authority(now = () => new Date()) {
  const dir = await Deno.makeTempDir();
  const key = await loadOrCreateSigningKey(`${dir}/signing-key.jwk`);
  return { dir, tokens: new TokenAuthority(key, "aegis-test", now) };
}

Deno.test("loadOrCreateSigningKey() writes a 0600 key once and reuses it", async () => {
  const dir = await Deno.makeTempDir();
  const a = await loadOrCreateSigningKey(`${dir}/k.jwk`);
  const b = await loadOrCreateSigningKey(`${dir}/k.jwk`);
  assert.equal(a.kid, b.kid);
  assert.equal((await Deno.stat(`${dir}/k.jwk`)).mode! & 0o777, 0o600);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyEnrollment() accepts its own token and returns the claims", async () => {
  const { dir, tokens } = await authority();
  const { token } = await tokens.issueEnrollment({
    tenantId: "t1",
    name: "web",
    cep: "h:1",
    ttlSecs: 900,
  });
  const claims = await tokens.verifyEnrollment(token);
  assert.equal(claims.tenant_id, "t1");
  assert.equal(claims.cep, "h:1");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyEnrollment() tells expired, foreign, malformed and wrong-kind tokens apart", async () => {
  let now = new Date("2026-01-01T00:00:00Z");
  const { dir, tokens } = await authority(() => now);
  const other = await authority(() => now);
  const { token } = await tokens.issueEnrollment({
    tenantId: "t",
    name: "",
    cep: "h:1",
    ttlSecs: 900,
  });
  const foreign = await other.tokens.issueEnrollment({
    tenantId: "t",
    name: "",
    cep: "h:1",
    ttlSecs: 900,
  });
  const nodeToken = await tokens.issueNode({
    nodeId: "n",
    tenantId: "t",
    keyFingerprint: "SHA256:x",
    ttlSecs: 60,
  });

  await assert.rejects(
    tokens.verifyEnrollment(foreign.token),
    { code: "ENROLL_TOKEN_WRONG_CONTROLLER" } as never,
  );
  await assert.rejects(
    tokens.verifyEnrollment(token.slice(0, -4) + "AAAA"),
    { code: "ENROLL_TOKEN_MALFORMED" } as never,
  );
  await assert.rejects(
    tokens.verifyEnrollment("not-a-token"),
    { code: "ENROLL_TOKEN_MALFORMED" } as never,
  );
  await assert.rejects(tokens.verifyEnrollment(nodeToken.token), {
    code: "ENROLL_TOKEN_MALFORMED",
    message: /wrong audience/,
  } as never);

  now = new Date("2026-01-01T00:20:00Z");
  await assert.rejects(tokens.verifyEnrollment(token), {
    code: "ENROLL_TOKEN_EXPIRED",
    message: /expired at 2026-01-01T00:15:00Z/,
  } as never);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(other.dir, { recursive: true });
});

Deno.test("verifyOperator() reads tenant and role", async () => {
  const { dir, tokens } = await authority();
  const token = await tokens.issueOperator({
    subject: "alice",
    tenantId: "team-a",
    role: "operator",
    ttlSecs: 60,
  });
  const claims = await tokens.verifyOperator(token);
  assert.equal(claims.aegis_role, "operator");
  assert.deepEqual(claims.tenants, []);
  await Deno.remove(dir, { recursive: true });
});
