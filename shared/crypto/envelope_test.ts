import assert from "node:assert/strict";
import { NodePrivateKey } from "./node_key.ts";
import { openEnvelope, sealEnvelope } from "./envelope.ts";
import { challengeBytes, rotationBytes } from "./signed_bytes.ts";
import { utf8 } from "./encoding.ts";

const nonce = new Uint8Array([9, 9, 9]);

Deno.test("openEnvelope() returns the payload a node key sealed", () => {
  const key = NodePrivateKey.generate();
  const envelope = sealEnvelope({
    key,
    token: "t",
    nodeId: "n-1",
    streamNonce: nonce,
    seq: 3n,
    body: { case: "heartbeat", value: { runningCalls: 2 } as never },
  });
  const payload = openEnvelope(envelope, key.publicKey);
  assert.equal(payload.nodeId, "n-1");
  assert.equal(payload.seq, 3n);
  assert.equal(payload.body.case, "heartbeat");
});

Deno.test("openEnvelope() refuses a tampered payload or another key", () => {
  const key = NodePrivateKey.generate();
  const envelope = sealEnvelope({
    key,
    token: "t",
    nodeId: "n-1",
    streamNonce: nonce,
    seq: 1n,
    body: { case: undefined },
  });
  assert.throws(() => openEnvelope(envelope, NodePrivateKey.generate().publicKey), {
    name: "AegisError",
    code: "SIGNATURE_INVALID",
  } as never);
  envelope.payload[envelope.payload.length - 1] ^= 1;
  assert.throws(
    () => openEnvelope(envelope, key.publicKey),
    { code: "SIGNATURE_INVALID" } as never,
  );
});

Deno.test("signed bytes of different purposes never coincide", () => {
  const a = challengeBytes("id", nonce, utf8("k"));
  const b = rotationBytes("id", nonce, utf8("k"), new Uint8Array());
  assert.notDeepEqual(a, b);
  // Length framing: moving a byte between fields changes the bytes.
  assert.notDeepEqual(
    challengeBytes("ab", utf8("c"), utf8("")),
    challengeBytes("a", utf8("bc"), utf8("")),
  );
});
