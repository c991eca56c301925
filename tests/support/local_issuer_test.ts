// The local issuer as a real process, checked the way the controller checks Keycloak: tokens
// verified with jose's remote JWKS against each realm's JWKS URL and issuer, and every bad-token
// helper refused for the reason it stands for.
import assert from "node:assert/strict";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import {
  consumerClaims,
  DEFAULT_AUDIENCE,
  forged,
  LocalIssuer,
  operatorClaims,
  type Realm,
  unsigned,
} from "./local_issuer.ts";

const OPERATOR = operatorClaims({
  sub: "alice",
  role: "operator",
  tenant: "acme",
  roles: ["aegis.edge.fleet.manage"],
});
const USER_ID = "5f0c1e9e-8a44-4a39-9f59-2d7f4b0c6a11";
const CONSUMER = consumerClaims({ userId: USER_ID, tier: "Pro" });

/** Verifies as a relying party would: a fresh remote JWKS (no cache shared across checks). */
async function verify(
  issuer: LocalIssuer,
  realm: Realm,
  token: string,
  audience = DEFAULT_AUDIENCE,
) {
  const jwks = createRemoteJWKSet(new URL(issuer.jwksUrl(realm)));
  return await jwtVerify(token, jwks, {
    issuer: issuer.issuer(realm),
    audience,
    algorithms: ["RS256", "ES256"],
  });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof errors.JOSEError, `not a jose error: ${error}`);
    return error.code;
  }
  assert.fail("the token was accepted");
}

Deno.test("local issuer: a separate process serving two Keycloak-shaped realms", async (t) => {
  const issuer = await LocalIssuer.start();
  try {
    await t.step("discovery and JWKS per realm: public keys only, RS256 + ES256", async () => {
      for (const realm of ["aegis-system", "zaru-consumer"] as const) {
        assert.equal(issuer.issuer(realm), `${issuer.baseUrl}/realms/${realm}`);
        const discovery = await (await fetch(issuer.discoveryUrl(realm))).json();
        assert.equal(discovery.issuer, issuer.issuer(realm));
        assert.equal(discovery.jwks_uri, issuer.jwksUrl(realm));
        const { keys } = await issuer.jwks(realm);
        assert.deepEqual(keys.map((k) => [k.alg, k.kty]).sort(), [["ES256", "EC"], [
          "RS256",
          "RSA",
        ]]);
        for (const key of keys) {
          for (const secret of ["d", "p", "q", "dp", "dq", "qi"]) {
            assert.equal(key[secret], undefined, `${realm} JWKS leaks ${secret}`);
          }
        }
      }
    });

    await t.step("realms have distinct keys", async () => {
      const a = await issuer.jwks("aegis-system");
      const b = await issuer.jwks("zaru-consumer");
      const material = (k: Record<string, unknown>) => String(k.n ?? k.x);
      for (const key of a.keys) {
        assert.ok(!b.keys.some((other) => other.kid === key.kid), "a kid is shared");
        assert.ok(!b.keys.some((other) => material(other) === material(key)), "a key is shared");
      }
      const token = await issuer.mint("zaru-consumer", CONSUMER);
      // The other realm's JWKS has no key under that kid, and its issuer is another one anyway.
      assert.equal(
        await refusal(verify(issuer, "aegis-system", token)),
        "ERR_JWKS_NO_MATCHING_KEY",
      );
    });

    await t.step("minted tokens verify, both algorithms, with iat/exp/jti and aud", async () => {
      for (const alg of ["RS256", "ES256"] as const) {
        const token = await issuer.mint("aegis-system", OPERATOR, { alg });
        assert.equal(decodeProtectedHeader(token).alg, alg);
        const { payload } = await verify(issuer, "aegis-system", token);
        assert.equal(payload.sub, "alice");
        assert.equal(payload.aegis_role, "operator");
        assert.equal(payload.tenant_id, "acme");
        assert.equal(payload.azp, "aegis-console");
        assert.ok(
          (payload.realm_access as { roles: string[] }).roles.includes("aegis.edge.fleet.manage"),
        );
        assert.equal(payload.aud, DEFAULT_AUDIENCE);
        assert.equal(payload.exp! - payload.iat!, 300);
        assert.match(payload.jti!, /^[0-9a-f-]{36}$/);
      }
      const { payload } = await verify(
        issuer,
        "zaru-consumer",
        await issuer.mint("zaru-consumer", CONSUMER),
      );
      assert.equal(payload.sub, USER_ID);
      assert.equal(payload.zaru_tier, "Pro");
      assert.equal(payload.tenant_id, `u-${USER_ID}`);
      const jtis = new Set(
        await Promise.all([1, 2, 3].map(() => issuer.mint("aegis-system", OPERATOR))),
      );
      assert.equal(jtis.size, 3, "each token has its own jti");
    });

    await t.step("audience and lifetime options", async () => {
      const other = await issuer.mint("aegis-system", OPERATOR, { audience: "someone-else" });
      assert.equal(
        await refusal(verify(issuer, "aegis-system", other)),
        "ERR_JWT_CLAIM_VALIDATION_FAILED",
      );
      await verify(issuer, "aegis-system", other, "someone-else");
      const expired = await issuer.mint("aegis-system", OPERATOR, { ttlSecs: -60 });
      assert.equal(await refusal(verify(issuer, "aegis-system", expired)), "ERR_JWT_EXPIRED");
    });

    await t.step("mint refuses malformed requests with 400", async () => {
      await assert.rejects(
        issuer.mint("aegis-system", OPERATOR, { alg: "HS256" as "RS256" }),
        (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT" && /alg/.test(e.message),
      );
      await assert.rejects(
        issuer.mint("aegis-system", OPERATOR, { ttlSecs: 10 ** 12 }),
        (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT",
      );
      const huge = await fetch(`${issuer.issuer("aegis-system")}/mint`, {
        method: "POST",
        body: JSON.stringify({ claims: { pad: "x".repeat(70_000) } }),
      });
      assert.equal(huge.status, 413);
      await huge.body?.cancel();
      const unknown = await fetch(`${issuer.baseUrl}/realms/master/protocol/openid-connect/certs`);
      assert.equal(unknown.status, 404);
      await unknown.body?.cancel();
    });

    await t.step("bad tokens fail each the way they should", async () => {
      const good = await issuer.mint("aegis-system", OPERATOR);
      const tampered = forged(good);
      assert.equal(decodeJwt(tampered).aegis_role, "admin");
      assert.equal(
        await refusal(verify(issuer, "aegis-system", tampered)),
        "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
      );
      const none = unsigned(good);
      assert.equal(decodeProtectedHeader(none).alg, "none");
      assert.ok(none.endsWith("."));
      assert.equal(await refusal(verify(issuer, "aegis-system", none)), "ERR_JOSE_ALG_NOT_ALLOWED");
      for (const alg of ["RS256", "ES256"] as const) {
        const fake = await issuer.selfSigned("aegis-system", OPERATOR, { alg });
        const kids = (await issuer.jwks("aegis-system")).keys.map((k) => k.kid);
        assert.ok(kids.includes(decodeProtectedHeader(fake).kid!), "the kid is a real one");
        assert.equal(
          await refusal(verify(issuer, "aegis-system", fake)),
          "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
        );
      }
    });

    await t.step("rotate: new keys verify, tokens of the dropped keys do not", async () => {
      const before = await issuer.mint("zaru-consumer", CONSUMER);
      const oldKids = (await issuer.jwks("zaru-consumer")).keys.map((k) => k.kid);
      const kids = await issuer.rotate("zaru-consumer");
      assert.deepEqual(
        (await issuer.jwks("zaru-consumer")).keys.map((k) => k.kid).sort(),
        [...kids].sort(),
      );
      assert.ok(!kids.some((kid) => oldKids.includes(kid)));
      assert.equal(
        await refusal(verify(issuer, "zaru-consumer", before)),
        "ERR_JWKS_NO_MATCHING_KEY",
      );
      await verify(issuer, "zaru-consumer", await issuer.mint("zaru-consumer", CONSUMER));
      // The other realm is untouched.
      await verify(issuer, "aegis-system", await issuer.mint("aegis-system", OPERATOR));
    });
  } finally {
    await issuer.stop();
  }

  // Nothing is left behind: the process is gone and its port no longer answers.
  assert.equal(await processExists(issuer.pid), false);
  await assert.rejects(fetch(issuer.jwksUrl("aegis-system")), TypeError);
});

Deno.test("local issuer: a parent that never calls stop() leaves no process behind", async () => {
  // A child Deno that starts an issuer and exits without stopping it: the issuer sees its stdin
  // close and ends on its own.
  const script = `
    import { LocalIssuer } from ${
    JSON.stringify(new URL("./local_issuer.ts", import.meta.url).href)
  };
    const issuer = await LocalIssuer.start();
    console.log(issuer.pid);
    Deno.exit(0);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const pid = Number(new TextDecoder().decode(out.stdout).trim());
  assert.ok(pid > 0);
  let gone = false;
  for (let i = 0; i < 200 && !gone; i++) {
    gone = !(await processExists(pid));
    if (!gone) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(gone, `issuer process ${pid} outlived its parent`);
});

Deno.test("consumerClaims refuses a user id that is not a UUID", () => {
  assert.throws(
    () => consumerClaims({ userId: "bob", tier: "Free" }),
    (e: Error & { code?: string }) => e.code === "INVALID_ARGUMENT",
  );
});

/** Whether a live (not zombie) process has this pid, read from /proc (Linux). */
async function processExists(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
