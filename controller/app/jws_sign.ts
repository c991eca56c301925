// Compact JWS signing on native code: the controller's tokens signed with node:crypto's Ed25519
// (a KeyObject made once, in signing_key.ts), not jose's WebCrypto path, which measured several
// times slower per token on the enrollment path (an async operation on a worker thread each).
// The token is the one jose made: header {"alg":"EdDSA","kid":…,"typ":"JWT"}, JSON claims,
// base64url without padding, so every verifier (jose included) reads it as before.
import { type KeyObject, sign } from "node:crypto";

export interface JwsKey {
  kid: string;
  nativeKey: KeyObject;
}

export function signJwt(key: JwsKey, claims: object): string {
  const header = encode({ alg: "EdDSA", kid: key.kid, typ: "JWT" });
  const input = `${header}.${encode(claims)}`;
  return `${input}.${sign(null, Buffer.from(input), key.nativeKey).toString("base64url")}`;
}

function encode(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
