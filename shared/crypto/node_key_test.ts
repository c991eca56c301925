import assert from "node:assert/strict";
import { NodePrivateKey, NodePublicKey } from "./node_key.ts";
import { utf8 } from "./encoding.ts";

Deno.test("NodePrivateKey round-trips through PEM and signs verifiably", () => {
  const key = NodePrivateKey.generate();
  const again = NodePrivateKey.fromPem(key.toPem());
  assert.ok(again.publicKey.equals(key.publicKey));
  const signature = again.sign(utf8("hello"));
  assert.ok(key.publicKey.verify(signature, utf8("hello")));
  assert.ok(!key.publicKey.verify(signature, utf8("hellO")));
});

Deno.test("NodePublicKey round-trips through the OpenSSH line", () => {
  const key = NodePrivateKey.generate().publicKey;
  const line = key.toOpenSsh("aegis-edge@host");
  assert.match(line, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\S+ aegis-edge@host$/);
  assert.ok(NodePublicKey.fromOpenSsh(line).equals(key));
});

Deno.test("fingerprint() matches what ssh-keygen -lf prints", async () => {
  const key = NodePrivateKey.generate().publicKey;
  const fingerprint = await key.fingerprint();
  assert.match(fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/node.key.pub`;
  await Deno.writeTextFile(path, key.toOpenSsh("t") + "\n");
  try {
    const out = await new Deno.Command("ssh-keygen", { args: ["-lf", path] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.ok(new TextDecoder().decode(out.stdout).includes(fingerprint));
  } catch (error) {
    // ssh-keygen is part of openssh-client; without it the format is still checked above.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("NodePrivateKey.fromPem() rejects something that is not an Ed25519 key", () => {
  assert.throws(
    () => NodePrivateKey.fromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"),
    {
      message: /not an Ed25519 PKCS#8 key/,
    },
  );
});

Deno.test("NodePrivateKey signs RFC 8032's test vectors byte for byte, and verifies strictly", () => {
  const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
  // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
  const vectors = [
    {
      seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      message: "",
      signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    {
      seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
      publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
      message: "72",
      signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da" +
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
  ];
  for (const v of vectors) {
    const key = NodePrivateKey.fromSeed(hex(v.seed));
    assert.deepEqual(key.publicKey.bytes, hex(v.publicKey));
    const message = v.message ? hex(v.message) : new Uint8Array();
    const signature = key.sign(message);
    assert.deepEqual(signature, hex(v.signature));
    assert.ok(key.publicKey.verify(signature, message));
    // Malleated: S + L (the group order) is the same point arithmetic, but not canonical.
    const malleated = new Uint8Array(signature);
    const L = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let carry = 0;
    for (let i = 0; i < 32; i++) {
      const sum = malleated[32 + i] + L[i] + carry;
      malleated[32 + i] = sum & 0xff;
      carry = sum >> 8;
    }
    assert.equal(key.publicKey.verify(malleated, message), false);
    assert.equal(key.publicKey.verify(signature.subarray(0, 63), message), false);
  }
});
