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
