import assert from "node:assert/strict";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import type { Db } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { TokenAuthority } from "./tokens.ts";
import { RateLimiter } from "./rate_limit.ts";
import { NodeAuthenticator } from "./node_auth.ts";
import { EnrollmentService } from "./enrollment.ts";
import { compileConfigRules, TrustedEnrollment } from "./trusted_enrollment.ts";

const OPERATOR = { sub: "alice", tenant_id: "team-a", aegis_role: "admin", tenants: [] } as never;

async function setup(
  fn: (s: {
    db: Db;
    service: EnrollmentService;
    setNow: (d: Date) => void;
  }) => Promise<void>,
) {
  let now = new Date();
  const clock = () => now;
  const dir = await Deno.makeTempDir();
  const store = await testDatabase();
  const db = await store.open();
  try {
    const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/k.jwk`), "t", clock);
    const service = new EnrollmentService(
      db,
      tokens,
      new RateLimiter(1000, 60_000),
      new NodeAuthenticator(db, tokens, clock),
      {
        publicEndpoint: "h:1",
        enrollmentTtlSecs: 900,
        nodeTokenTtlSecs: 3600,
        clockSkewLeewaySecs: 300,
      },
      clock,
      new TrustedEnrollment(compileConfigRules([
        { pattern: "*.trusted.test", cidrs: ["10.0.0.0/8"], tenant: "team-t" },
      ])),
    );
    await fn({ db, service, setNow: (d) => now = d });
  } finally {
    await store.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

async function answer(
  service: EnrollmentService,
  key: NodePrivateKey,
  opts: { hostname?: string; remoteAddr?: string } = {},
) {
  const c = await service.attest({
    publicKey: key.publicKey.bytes,
    hostname: opts.hostname ?? "web-1",
    os: "linux",
    arch: "x86_64",
    remoteAddr: opts.remoteAddr ?? "127.0.0.1",
  });
  const signature = key.sign(challengeBytes(c.challengeId, c.nonce, key.publicKey.bytes));
  return { challengeId: c.challengeId, signature };
}

async function liveNodes(db: Db) {
  return await db.query<{ node_id: string; status: string; token_jti: string }>(
    `SELECT node_id, status, token_jti FROM edge_daemons ORDER BY created_at, node_id`,
  );
}

Deno.test(`[${TEST_DB_KIND}] enroll() spends the token once, and the same key redeeming it again gets the same node`, async () => {
  await setup(async ({ db, service }) => {
    const { token } = await service.issueToken(OPERATOR, { name: "web" });
    const key = NodePrivateKey.generate();
    const first = await service.enroll({ ...await answer(service, key), enrollmentToken: token });
    assert.equal(first.tenantId, "team-a");
    assert.equal(first.nodeName, "web");
    assert.deepEqual(first.replacedNodeIds, []);

    // A retried enrollment (the answer was lost): same node, a new token, the old one revoked.
    const again = await service.enroll({ ...await answer(service, key), enrollmentToken: token });
    assert.equal(again.nodeId, first.nodeId);
    assert.notEqual(again.token, first.token);
    const revoked = await db.query<{ reason: string }>(`SELECT reason FROM revoked_tokens`);
    assert.deepEqual(revoked.map((r) => r.reason), ["superseded"]);

    // Another key gets nothing from a spent token.
    await assert.rejects(
      service.enroll({
        ...await answer(service, NodePrivateKey.generate()),
        enrollmentToken: token,
      }),
      { code: "ENROLL_TOKEN_REDEEMED" } as never,
    );
    assert.equal((await liveNodes(db)).length, 1);
  });
});

Deno.test(`[${TEST_DB_KIND}] enroll() with a key a live node holds replaces that node and revokes its token`, async () => {
  await setup(async ({ db, service }) => {
    const key = NodePrivateKey.generate();
    const a = (await service.issueToken(OPERATOR, {})).token;
    const b = (await service.issueToken(OPERATOR, {})).token;
    const first = await service.enroll({ ...await answer(service, key), enrollmentToken: a });
    const second = await service.enroll({ ...await answer(service, key), enrollmentToken: b });
    assert.deepEqual(second.replacedNodeIds, [first.nodeId]);
    const nodes = await liveNodes(db);
    assert.deepEqual(nodes.map((n) => [n.node_id, n.status]), [
      [first.nodeId, "revoked"],
      [second.nodeId, "pending"],
    ]);
    const revoked = await db.query<{ jti: string; reason: string }>(
      `SELECT jti, reason FROM revoked_tokens`,
    );
    assert.deepEqual(revoked, [{ jti: nodes[0].token_jti, reason: "replaced" }]);
  });
});

Deno.test(`[${TEST_DB_KIND}] a challenge answers once, and not after it expired`, async () => {
  await setup(async ({ service, setNow }) => {
    const key = NodePrivateKey.generate();
    const token = (await service.issueToken(OPERATOR, {})).token;
    const answered = await answer(service, key);
    const bad = NodePrivateKey.generate().sign(new Uint8Array([1]));
    await assert.rejects(
      service.enroll({ ...answered, signature: bad, enrollmentToken: token }),
      { code: "SIGNATURE_INVALID" } as never,
    );
    // A refused answer used the challenge up too: no second guess with it.
    await assert.rejects(
      service.enroll({ ...answered, enrollmentToken: token }),
      { code: "CHALLENGE_INVALID" } as never,
    );
    const late = await answer(service, key);
    setNow(new Date(Date.now() + 6 * 60_000));
    await assert.rejects(
      service.enroll({ ...late, enrollmentToken: token }),
      { code: "CHALLENGE_INVALID" } as never,
    );
  });
});

Deno.test(`[${TEST_DB_KIND}] a challenge that enrolled a node cannot enroll again, nor be altered`, async () => {
  await setup(async ({ db, service }) => {
    const key = NodePrivateKey.generate();
    const a = (await service.issueToken(OPERATOR, {})).token;
    const b = (await service.issueToken(OPERATOR, {})).token;
    const answered = await answer(service, key);
    await service.enroll({ ...answered, enrollmentToken: a });
    await assert.rejects(
      service.enroll({ ...answered, enrollmentToken: b }),
      { code: "CHALLENGE_INVALID" } as never,
    );
    const [version, payload, tag] = (await answer(service, key)).challengeId.split(".");
    const other = Buffer.from(
      Buffer.from(payload, "base64url").toString().replace('"127.0.0.1"', '"10.0.0.1"'),
    ).toString("base64url");
    await assert.rejects(
      service.enroll({
        ...answered,
        challengeId: `${version}.${other}.${tag}`,
        enrollmentToken: b,
      }),
      { code: "CHALLENGE_INVALID" } as never,
    );
    // Token b was never spent by those refusals.
    const tokenB = await db.query(`SELECT 1 FROM enrollment_tokens WHERE redeemed_at IS NULL`);
    assert.equal(tokenB.length, 1);
  });
});

Deno.test(`[${TEST_DB_KIND}] a hostname-bound token is refused to another host and stays unspent`, async () => {
  await setup(async ({ service }) => {
    const key = NodePrivateKey.generate();
    const token = (await service.issueToken(OPERATOR, { hostname_pattern: "*.web.test" })).token;
    await assert.rejects(
      service.enroll({
        ...await answer(service, key, { hostname: "db.test" }),
        enrollmentToken: token,
      }),
      { code: "ENROLL_HOSTNAME_MISMATCH" } as never,
    );
    const ok = await service.enroll({
      ...await answer(service, key, { hostname: "a.web.test" }),
      enrollmentToken: token,
    });
    assert.equal(ok.nodeName, "a.web.test");
  });
});

Deno.test(`[${TEST_DB_KIND}] enrollTrusted() records the enrollment and binds the rule's tenant`, async () => {
  await setup(async ({ db, service }) => {
    const key = NodePrivateKey.generate();
    const enrolled = await service.enrollTrusted({
      ...await answer(service, key, { hostname: "a.trusted.test", remoteAddr: "10.1.2.3" }),
      remoteAddr: "10.1.2.3",
    });
    assert.equal(enrolled.tenantId, "team-t");
    assert.equal(enrolled.rule, "config rule 0");
    const rows = await db.query<{ issued_by: string; node_id: string; name: string }>(
      `SELECT issued_by, node_id, name FROM enrollment_tokens`,
    );
    assert.deepEqual(rows, [{
      issued_by: "trusted enrollment (config rule 0)",
      node_id: enrolled.nodeId,
      name: "a.trusted.test",
    }]);
    await assert.rejects(
      service.enrollTrusted({
        ...await answer(service, key, { hostname: "a.trusted.test", remoteAddr: "192.0.2.1" }),
        remoteAddr: "192.0.2.1",
      }),
      { code: "ENROLL_NOT_TRUSTED" } as never,
    );
  });
});
