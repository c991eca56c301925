import assert from "node:assert/strict";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { signJwt } from "./jws_sign.ts";
import { keyFingerprint } from "./key_fingerprint.ts";

Deno.test("signJwt() makes a compact JWS jose verifies, with the header jose wrote", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await loadOrCreateSigningKey(`${dir}/k.jwk`);
    const claims = { iss: "i", aud: "a", sub: "n-1", jti: "j", iat: 1, exp: 4e9, x: { y: "é" } };
    const token = signJwt(key, claims);
    assert.deepEqual(decodeProtectedHeader(token), { alg: "EdDSA", kid: key.kid, typ: "JWT" });
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: [key.publicJwk] }), {
      algorithms: ["EdDSA"],
    });
    assert.deepEqual(payload, claims);
    const altered = token.slice(0, -6) + (token.endsWith("AAAAAA") ? "BBBBBB" : "AAAAAA");
    await assert.rejects(jwtVerify(altered, createLocalJWKSet({ keys: [key.publicJwk] })));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keyFingerprint() is NodePublicKey.fingerprint(), synchronously", async () => {
  for (let i = 0; i < 5; i++) {
    const key = NodePrivateKey.generate().publicKey;
    assert.equal(keyFingerprint(key), await key.fingerprint());
  }
});
