// The controller's token signing key: an Ed25519 JWK in a 0600 file. It lives outside the
// database on purpose: `aegis-controller token create` must sign while the running controller
// holds the embedded database, and relays that share one PostgreSQL share this file.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { AegisError } from "../../shared/errors.ts";
import { readTextIfExists } from "../../shared/fs/atomic.ts";
import { fromBase64Url } from "../../shared/crypto/encoding.ts";
import { deriveChallengeKey } from "./attest_challenge.ts";

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** The same private key for node:crypto, made once: tokens are signed with it (jws_sign.ts). */
  nativeKey: KeyObject;
  /** The MAC key of attestation challenges (attest_challenge.ts), derived from this key. */
  challengeKey: Uint8Array;
}

export async function loadOrCreateSigningKey(path: string): Promise<SigningKey> {
  const existing = await readTextIfExists(path);
  if (existing !== undefined) return await parseSigningKey(existing, path);
  const { privateKey } = await generateKeyPair("Ed25519", { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  try {
    await Deno.writeTextFile(path, JSON.stringify({ ...jwk, kid, alg: "EdDSA" }) + "\n", {
      createNew: true,
      mode: 0o600,
    });
  } catch (error) {
    // Another process created it first; use theirs so both sign with one key.
    if (error instanceof Deno.errors.AlreadyExists) return await loadSigningKey(path);
    throw error;
  }
  return await loadSigningKey(path);
}

export async function loadSigningKey(path: string): Promise<SigningKey> {
  const text = await readTextIfExists(path);
  if (text === undefined) {
    throw new AegisError("CONFIG_INVALID", `no signing key at ${path}`, {
      hint:
        "Start the controller once with this --data-dir (it creates the key), or set auth.signing_key_file.",
    });
  }
  return await parseSigningKey(text, path);
}

async function parseSigningKey(text: string, path: string): Promise<SigningKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw new AegisError("CONFIG_INVALID", `${path} is not a JSON Web Key`);
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.x) {
    throw new AegisError("CONFIG_INVALID", `${path} is not an Ed25519 private JWK`);
  }
  const kid = jwk.kid ?? await calculateJwkThumbprint(jwk);
  const privateKey = await importJWK({ ...jwk, alg: "EdDSA" }, "EdDSA") as CryptoKey;
  return {
    kid,
    privateKey,
    publicJwk: { kty: "OKP", crv: "Ed25519", x: jwk.x, kid, alg: "EdDSA", use: "sig" },
    nativeKey: createPrivateKey({
      key: { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d },
      format: "jwk",
    }),
    challengeKey: deriveChallengeKey(fromBase64Url(jwk.d)),
  };
}
