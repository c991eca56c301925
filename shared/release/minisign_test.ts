import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { AegisError } from "../errors.ts";
import {
  blake2b512,
  generateReleaseKey,
  keyIdHex,
  parsePublicKey,
  parseSecretKey,
  parseSignature,
  publicKeyBase64,
  publicKeyPem,
  signDetached,
  verifyDetached,
} from "./minisign.ts";

// The interoperability tests run the real tools; Debian packages them as `minisign` and
// `openssl` (CI installs both). Without one, its tests are reported as ignored, not passed.
const MINISIGN = ["/usr/bin/minisign", "/usr/local/bin/minisign"].find((p) => existsSync(p));
const OPENSSL = ["/usr/bin/openssl", "/usr/local/bin/openssl"].find((p) => existsSync(p));
const MESSAGE = new TextEncoder().encode('{"schema":1,"version":"1.2.3"}\n');

async function run(cmd: string, args: string[], cwd?: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: out.success, stdout: text(out.stdout), stderr: text(out.stderr), raw: out.stdout };
}

function refusedWith(code: string, pattern: RegExp) {
  return (error: unknown) =>
    error instanceof AegisError && error.code === code && pattern.test(error.message);
}

Deno.test("signDetached() output verifies with verifyDetached() and returns the comment", () => {
  const key = generateReleaseKey();
  const sig = signDetached(MESSAGE, parseSecretKey(key.secretKeyText), "file:manifest.json");
  const result = verifyDetached(MESSAGE, sig, parsePublicKey(key.publicKeyText));
  assert.deepEqual(result, { trustedComment: "file:manifest.json" });
  assert.match(key.keyId, /^[0-9A-F]{16}$/);
  assert.equal(keyIdHex(parsePublicKey(key.publicKeyText).keyId), key.keyId);
});

Deno.test("verifyDetached() refuses a changed message, comment, signature or key", () => {
  const key = generateReleaseKey();
  const other = generateReleaseKey();
  const pub = parsePublicKey(key.publicKeyText);
  const sig = signDetached(MESSAGE, parseSecretKey(key.secretKeyText), "version:1.2.3");
  const changed = MESSAGE.slice();
  changed[3] ^= 1;
  assert.throws(
    () => verifyDetached(changed, sig, pub),
    refusedWith("RELEASE_SIGNATURE_INVALID", /does not match the file/),
  );
  const comment = sig.replace("version:1.2.3", "version:9.9.9");
  assert.throws(
    () => verifyDetached(MESSAGE, comment, pub),
    refusedWith("RELEASE_SIGNATURE_INVALID", /trusted comment was changed/),
  );
  assert.throws(
    () => verifyDetached(MESSAGE, sig, parsePublicKey(other.publicKeyText)),
    refusedWith("RELEASE_SIGNATURE_INVALID", /made by key .* not the release key/),
  );
  // Same key id, different key: the signature itself must fail, not just the id check.
  const forgedPub = { keyId: pub.keyId, publicKey: parsePublicKey(other.publicKeyText).publicKey };
  assert.throws(
    () => verifyDetached(MESSAGE, sig, forgedPub),
    refusedWith("RELEASE_SIGNATURE_INVALID", /does not match the file/),
  );
  const lines = sig.split("\n");
  const sigBytes = Buffer.from(lines[1], "base64");
  sigBytes[40] ^= 0x80;
  lines[1] = sigBytes.toString("base64");
  assert.throws(
    () => verifyDetached(MESSAGE, lines.join("\n"), pub),
    refusedWith("RELEASE_SIGNATURE_INVALID", /does not match/),
  );
});

Deno.test("parseSignature() refuses oddities of form, size and algorithm", () => {
  const key = generateReleaseKey();
  const sig = signDetached(MESSAGE, parseSecretKey(key.secretKeyText), "c");
  const lines = sig.split("\n");
  const bad = [
    "x".repeat(5000),
    lines.slice(0, 3).join("\n"),
    [lines[0], lines[1], "comment: c", lines[3]].join("\n"),
    [lines[0], lines[1] + "=", lines[2], lines[3]].join("\n"),
    [lines[0], lines[1], lines[2], lines[3].slice(4)].join("\n"),
    sig + "extra line\n",
  ];
  for (const text of bad) {
    assert.throws(() => parseSignature(text), refusedWith("RELEASE_SIGNATURE_INVALID", /./));
  }
  // A legacy "Ed" signature (over the raw file) is refused by name.
  const raw = Buffer.from(lines[1], "base64");
  raw[1] = "d".charCodeAt(0);
  const legacy = [lines[0], raw.toString("base64"), lines[2], lines[3]].join("\n");
  assert.throws(() => parseSignature(legacy), refusedWith("RELEASE_SIGNATURE_INVALID", /legacy/));
  // CRLF line endings (a file edited on Windows) still parse.
  assert.equal(parseSignature(sig.replaceAll("\n", "\r\n")).trustedComment, "c");
});

Deno.test("signDetached() refuses a multi-line or oversized trusted comment", () => {
  const secret = parseSecretKey(generateReleaseKey().secretKeyText);
  assert.throws(() => signDetached(MESSAGE, secret, "a\nb"), /one line/);
  assert.throws(() => signDetached(MESSAGE, secret, "a".repeat(1025)), /at most 1024/);
});

Deno.test("parseSecretKey() refuses an encrypted key, naming `minisign -G -W`", () => {
  const text = generateReleaseKey().secretKeyText;
  const raw = Buffer.from(text.split("\n")[1], "base64");
  raw.write("Sc", 2, "latin1");
  assert.throws(
    () => parseSecretKey(`untrusted comment: x\n${raw.toString("base64")}\n`),
    (e: unknown) =>
      e instanceof AegisError && e.code === "RELEASE_KEY_INVALID" &&
      /encrypted/.test(e.message) && /minisign -G -W/.test(e.hint),
  );
});

Deno.test("parseSecretKey() refuses a corrupted key and never prints its private bytes", () => {
  const text = generateReleaseKey().secretKeyText;
  const raw = Buffer.from(text.split("\n")[1], "base64");
  raw[70] ^= 1; // inside the private half
  assert.throws(
    () => parseSecretKey(`untrusted comment: x\n${raw.toString("base64")}\n`),
    refusedWith("RELEASE_KEY_INVALID", /checksum/),
  );
  const secret = parseSecretKey(text);
  assert.match(String(secret), /^ReleaseSecretKey\([0-9A-F]{16}\)$/);
  assert.doesNotMatch(JSON.stringify(secret), /[A-Za-z0-9+/]{40}/);
});

Deno.test("parsePublicKey() takes the .pub file or its base64 line, and nothing else", () => {
  const key = generateReleaseKey();
  const line = key.publicKeyText.split("\n")[1];
  assert.equal(publicKeyBase64(parsePublicKey(line)), line);
  assert.equal(publicKeyBase64(parsePublicKey(key.publicKeyText)), line);
  assert.throws(() => parsePublicKey(line.slice(0, -4)), refusedWith("RELEASE_KEY_INVALID", /./));
  assert.throws(() => parsePublicKey(`a\nb\nc`), refusedWith("RELEASE_KEY_INVALID", /./));
});

Deno.test({
  name: "our signature verifies with `minisign -V`; its signature with our key verifies here",
  ignore: !MINISIGN, // needs the real minisign (CI installs it from Debian)
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const key = generateReleaseKey();
      await Deno.writeFile(join(dir, "m.json"), MESSAGE);
      await Deno.writeTextFile(join(dir, "release.key"), key.secretKeyText, { mode: 0o600 });
      await Deno.writeTextFile(join(dir, "release.pub"), key.publicKeyText);
      const ours = signDetached(MESSAGE, parseSecretKey(key.secretKeyText), "file:m.json\tv:1");
      await Deno.writeTextFile(join(dir, "m.json.minisig"), ours);
      const pubLine = key.publicKeyText.split("\n")[1];
      const verified = await run(MINISIGN!, ["-Vm", "m.json", "-P", pubLine], dir);
      assert.ok(verified.ok, verified.stderr);
      assert.match(verified.stdout, /Trusted comment: file:m.json\tv:1/);
      // minisign signs with a key we generated, and we verify what it made.
      await Deno.remove(join(dir, "m.json.minisig"));
      const signed = await run(MINISIGN!, ["-S", "-s", "release.key", "-m", "m.json"], dir);
      assert.ok(signed.ok, signed.stderr);
      const theirs = await Deno.readTextFile(join(dir, "m.json.minisig"));
      assert.match(verifyDetached(MESSAGE, theirs, parsePublicKey(pubLine)).trustedComment, /m/);
      // Tampered: minisign refuses our signature over a changed file.
      await Deno.writeFile(join(dir, "m.json"), new TextEncoder().encode("{}\n"));
      await Deno.writeTextFile(join(dir, "m.json.minisig"), ours);
      assert.equal((await run(MINISIGN!, ["-Vm", "m.json", "-P", pubLine], dir)).ok, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a key and signature from `minisign -G -W` / `minisign -S` work here",
  ignore: !MINISIGN, // needs the real minisign (CI installs it from Debian)
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const made = await run(MINISIGN!, ["-G", "-W", "-p", "k.pub", "-s", "k.key"], dir);
      assert.ok(made.ok, made.stderr);
      await Deno.writeFile(join(dir, "m.json"), MESSAGE);
      assert.ok((await run(MINISIGN!, ["-S", "-s", "k.key", "-m", "m.json"], dir)).ok);
      const pub = parsePublicKey(await Deno.readTextFile(join(dir, "k.pub")));
      const sig = await Deno.readTextFile(join(dir, "m.json.minisig"));
      assert.match(verifyDetached(MESSAGE, sig, pub).trustedComment, /file:m.json/);
      // Their secret key signs here, and minisign accepts the result.
      const secret = parseSecretKey(await Deno.readTextFile(join(dir, "k.key")));
      assert.deepEqual(secret.public, pub);
      await Deno.writeTextFile(join(dir, "m.json.minisig"), signDetached(MESSAGE, secret, "ok"));
      assert.ok((await run(MINISIGN!, ["-Vm", "m.json", "-p", "k.pub"], dir)).ok);
      // A legacy (-l) signature is refused here even though minisign accepts it.
      assert.ok((await run(MINISIGN!, ["-S", "-l", "-s", "k.key", "-m", "m.json"], dir)).ok);
      const legacy = await Deno.readTextFile(join(dir, "m.json.minisig"));
      assert.throws(() => verifyDetached(MESSAGE, legacy, pub), /legacy/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "openssl 3 verifies our signature over `openssl dgst -blake2b512 -binary`",
  ignore: !OPENSSL, // needs OpenSSL 3 on PATH
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const key = generateReleaseKey();
      const pub = parsePublicKey(key.publicKeyText);
      const sig = parseSignature(signDetached(MESSAGE, parseSecretKey(key.secretKeyText), "c"));
      await Deno.writeFile(join(dir, "m.json"), MESSAGE);
      await Deno.writeTextFile(join(dir, "release.pem"), publicKeyPem(pub));
      await Deno.writeFile(join(dir, "m.sig"), sig.signature);
      const digest = await run(OPENSSL!, ["dgst", "-blake2b512", "-binary", "m.json"], dir);
      assert.deepEqual(new Uint8Array(digest.raw), blake2b512(MESSAGE));
      await Deno.writeFile(join(dir, "m.b2"), digest.raw);
      const verify = (file: string) =>
        run(OPENSSL!, [
          "pkeyutl",
          "-verify",
          "-pubin",
          "-inkey",
          "release.pem",
          "-rawin",
          "-in",
          file,
          "-sigfile",
          "m.sig",
        ], dir);
      const good = await verify("m.b2");
      assert.ok(good.ok, good.stderr + good.stdout);
      const tampered = new Uint8Array(digest.raw);
      tampered[0] ^= 1;
      await Deno.writeFile(join(dir, "bad.b2"), tampered);
      assert.equal((await verify("bad.b2")).ok, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
