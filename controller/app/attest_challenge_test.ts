import assert from "node:assert/strict";
import { ChallengeSealer, deriveChallengeKey } from "./attest_challenge.ts";

const FIELDS = {
  publicKey: "AAAA",
  hostname: "web-1.example.com",
  os: "linux",
  arch: "x86_64",
  remoteAddr: "2001:db8::1",
  expiresAt: new Date("2026-01-01T00:05:00Z"),
};

const sealer = () => new ChallengeSealer(deriveChallengeKey(new Uint8Array(32).fill(7)));

Deno.test("ChallengeSealer.open() returns what seal() attested, with the same nonce", () => {
  const s = sealer();
  const { challengeId, nonce } = s.seal(FIELDS);
  const opened = s.open(challengeId);
  const { id, ...rest } = opened.challenge;
  assert.deepEqual(rest, FIELDS);
  assert.equal(typeof id, "string");
  assert.deepEqual(opened.nonce, nonce);
  assert.equal(nonce.length, 32);
  // Two challenges for the same attestation differ: each is answered once, on its own.
  assert.notEqual(s.seal(FIELDS).challengeId, challengeId);
});

Deno.test("ChallengeSealer.open() refuses an altered id, another key's id and junk", () => {
  const s = sealer();
  const { challengeId } = s.seal(FIELDS);
  const [version, payload, tag] = challengeId.split(".");
  const forged = Buffer.from(
    Buffer.from(payload, "base64url").toString().replace("web-1", "web-2"),
  ).toString("base64url");
  const other = new ChallengeSealer(deriveChallengeKey(new Uint8Array(32).fill(8)));
  for (
    const bad of [
      `${version}.${forged}.${tag}`,
      other.seal(FIELDS).challengeId,
      "3f2504e0-4f89-11d3-9a0c-0305e82c3301", // a stored challenge's id, from before
      `${version}.${payload}.${tag}x`,
      `${version}.${payload}.${tag}.`,
      "c1." + "A".repeat(5000) + "." + tag,
    ]
  ) {
    assert.throws(() => s.open(bad), { code: "CHALLENGE_INVALID" } as never, bad.slice(0, 40));
  }
});
