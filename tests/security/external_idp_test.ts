// End to end: operator tokens from an external identity provider. A real controller process
// trusts a provider whose JWKS a real loopback HTTP server serves (loopback is the one place
// plain http is allowed); issuer, audience and algorithms are pinned, and a key the provider
// rotates in is picked up from the JWKS without a restart.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { eventually } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { FakeIdp, idpKey, unsignedToken } from "./fake_idp.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ISSUER = "https://idp.test/realms/aegis";
const AUDIENCE = "aegis-edge";

Deno.test(
  `[${TEST_DB_KIND}] external operator tokens: wrong iss, aud, alg or none are refused`,
  opts,
  async () => {
    const idp = new FakeIdp();
    const es256 = await idpKey("ES256");
    // A key the provider really publishes, but with an algorithm this controller did not pin.
    const es384 = await idpKey("ES384");
    idp.keys = [es256, es384];
    // The first form of the config (operator_* keys), which must keep working.
    const controller = await startControllerProcess({
      auth: [
        `operator_jwks_url: "${idp.jwksUrl}"`,
        `operator_issuer: "${ISSUER}"`,
        `operator_audience: "${AUDIENCE}"`,
      ].join("\n"),
    });
    const hosts = (token: string) => controller.api("/v1/edge/hosts", { token });
    try {
      const good = await hosts(await idp.sign(es256, { iss: ISSUER, aud: AUDIENCE }));
      assert.equal(good.status, 200, await good.text());

      const refused = {
        "wrong issuer": await idp.sign(es256, { iss: "https://evil.test", aud: AUDIENCE }),
        "wrong audience": await idp.sign(es256, { iss: ISSUER, aud: "some-other-app" }),
        "no audience": await idp.sign(es256, { iss: ISSUER }),
        "algorithm not pinned": await idp.sign(es384, { iss: ISSUER, aud: AUDIENCE }),
        "alg none": unsignedToken({ iss: ISSUER, aud: AUDIENCE }),
      };
      for (const [what, token] of Object.entries(refused)) {
        const response = await hosts(token);
        const body = await response.json();
        assert.equal(response.status, 401, `${what}: ${JSON.stringify(body)}`);
        assert.equal(body.error.code, "UNAUTHENTICATED", what);
      }
    } finally {
      await controller.stop();
      await idp.close();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] external operator tokens: a key the provider rotates in is accepted`,
  opts,
  async () => {
    const idp = new FakeIdp();
    const first = await idpKey("EdDSA");
    idp.keys = [first];
    const controller = await startControllerProcess({
      auth: [
        "issuers:",
        `  - issuer: "${ISSUER}"`,
        `    audience: "${AUDIENCE}"`,
        `    jwks_url: "${idp.jwksUrl}"`,
        "    algorithms: [EdDSA, ES256]",
        "    jwks_cooldown_secs: 1",
      ].join("\n"),
    });
    const hosts = (token: string) => controller.api("/v1/edge/hosts", { token });
    try {
      const before = await hosts(await idp.sign(first, { iss: ISSUER, aud: AUDIENCE }));
      assert.equal(before.status, 200, await before.text());
      // Cached: a second token with a known kid does not fetch the JWKS again.
      const fetches = idp.fetches;
      const again = await hosts(await idp.sign(first, { iss: ISSUER, aud: AUDIENCE }));
      assert.equal(again.status, 200, await again.text());
      assert.equal(idp.fetches, fetches);

      // The provider rotates: only the new key is published now.
      const next = await idpKey("ES256");
      idp.keys = [next];
      const rotated = await idp.sign(next, { iss: ISSUER, aud: AUDIENCE });
      await eventually(async () => {
        const response = await hosts(rotated);
        await response.body?.cancel();
        return response.status === 200 ? true : undefined;
      }, "a token signed by the rotated-in key to be accepted");
      assert.ok(idp.fetches > fetches, "the JWKS was fetched again for the unknown kid");

      // A token from a key the provider never published is still refused.
      const stranger = await idpKey("ES256", next.kid);
      const forged = await hosts(await idp.sign(stranger, { iss: ISSUER, aud: AUDIENCE }));
      assert.equal(forged.status, 401, await forged.text());
    } finally {
      await controller.stop();
      await idp.close();
    }
  },
);
