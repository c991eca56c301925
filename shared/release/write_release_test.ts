import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AegisError } from "../errors.ts";
import {
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  PUBLIC_KEY_FILE,
  type ReleaseManifest,
  SUMS_FILE,
} from "./manifest.ts";
import { generateReleaseKey, parseSecretKey, signDetached } from "./minisign.ts";
import { parseSums, sha256Hex } from "./sums.ts";
import { manifestTrustedComment, readVerifiedManifest, writeRelease } from "./write_release.ts";

const encode = (s: string) => new TextEncoder().encode(s);

async function withRelease(
  fn: (
    ctx: { out: string; bin: string; key: ReturnType<typeof generateReleaseKey> },
  ) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  try {
    const bin = join(dir, "launcher");
    await Deno.writeTextFile(bin, "#!/bin/sh\necho fixture\n");
    await fn({ out: join(dir, "dist"), bin, key: generateReleaseKey() });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function refused(pattern: RegExp) {
  return (e: unknown) =>
    e instanceof AegisError && e.code === "RELEASE_SIGNATURE_INVALID" && pattern.test(e.message);
}

Deno.test("writeRelease() writes a release that readVerifiedManifest() accepts", async () => {
  await withRelease(async ({ out, bin, key }) => {
    const manifest = await writeRelease({
      outDir: out,
      version: "1.2.3",
      secretKeyText: key.secretKeyText,
      createdAt: new Date("2026-01-02T03:04:05Z"),
      artifacts: [
        { name: "aegis", os: "linux", arch: "x86_64", path: bin },
        { name: "aegis", os: "windows", arch: "arm64", path: bin },
      ],
    });
    const dir = join(out, "1.2.3");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(
      names,
      [
        SUMS_FILE,
        "aegis-1.2.3-linux-x86_64",
        "aegis-1.2.3-windows-arm64.exe",
        MANIFEST_FILE,
        MANIFEST_SIGNATURE_FILE,
        PUBLIC_KEY_FILE,
      ].sort(),
    );
    const bytes = await Deno.readFile(join(dir, MANIFEST_FILE));
    const sig = await Deno.readTextFile(join(dir, MANIFEST_SIGNATURE_FILE));
    const pub = await Deno.readTextFile(join(dir, PUBLIC_KEY_FILE));
    assert.equal(pub, key.publicKeyText);
    assert.deepEqual(readVerifiedManifest(bytes, sig, key.publicKeyText), manifest);
    assert.equal(manifest.created_at, "2026-01-02T03:04:05.000Z");
    const launcher = await Deno.readFile(bin);
    assert.deepEqual(manifest.artifacts[0], {
      name: "aegis",
      os: "linux",
      arch: "x86_64",
      file: "aegis-1.2.3-linux-x86_64",
      sha256: sha256Hex(launcher),
      size: launcher.length,
    });
    const sums = parseSums(await Deno.readTextFile(join(dir, SUMS_FILE)));
    assert.deepEqual(sums.map((s) => s.file), [
      ...manifest.artifacts.map((a) => a.file),
      MANIFEST_FILE,
    ]);
    assert.equal(sums.at(-1)!.sha256, sha256Hex(bytes));
    if (Deno.build.os !== "windows") {
      assert.equal(Deno.statSync(join(dir, "aegis-1.2.3-linux-x86_64")).mode! & 0o777, 0o755);
      assert.equal(Deno.statSync(join(dir, MANIFEST_FILE)).mode! & 0o777, 0o644);
    }
    // Nothing half-written is left beside it.
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name), ["1.2.3"]);
  });
});

Deno.test("writeRelease() writes a version once unless told to replace it", async () => {
  await withRelease(async ({ out, bin, key }) => {
    const options = {
      outDir: out,
      version: "1.0.0",
      secretKeyText: key.secretKeyText,
      artifacts: [{
        name: "aegis" as const,
        os: "linux" as const,
        arch: "arm64" as const,
        path: bin,
      }],
    };
    await writeRelease(options);
    await assert.rejects(
      writeRelease(options),
      (e: unknown) => e instanceof AegisError && e.code === "CONFLICT",
    );
    await Deno.writeTextFile(bin, "#!/bin/sh\necho second\n");
    const second = await writeRelease({ ...options, replace: true });
    assert.equal(second.artifacts[0].sha256, sha256Hex(await Deno.readFile(bin)));
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name), ["1.0.0"]);
  });
});

Deno.test("writeRelease() refuses duplicates and bad versions, leaving nothing behind", async () => {
  await withRelease(async ({ out, bin, key }) => {
    const artifact = {
      name: "aegis" as const,
      os: "linux" as const,
      arch: "arm64" as const,
      path: bin,
    };
    await assert.rejects(
      writeRelease({
        outDir: out,
        version: "1.0.0",
        secretKeyText: key.secretKeyText,
        artifacts: [artifact, artifact],
      }),
      /given twice/,
    );
    await assert.rejects(
      writeRelease({
        outDir: out,
        version: "1.0",
        secretKeyText: key.secretKeyText,
        artifacts: [artifact],
      }),
      /not a release version/,
    );
    await assert.rejects(
      writeRelease({
        outDir: out,
        version: "1.0.0",
        secretKeyText: key.secretKeyText,
        artifacts: [{ ...artifact, path: join(out, "missing") }],
      }),
      Deno.errors.NotFound,
    );
    const left = await Array.fromAsync(Deno.readDir(out)).catch(() => []);
    assert.deepEqual(left, []);
  });
});

Deno.test("an --unsigned release has no signature and no public key", async () => {
  await withRelease(async ({ out, bin }) => {
    await writeRelease({
      outDir: out,
      version: "0.9.0",
      secretKeyText: null,
      artifacts: [{ name: "aegis", os: "macos", arch: "arm64", path: bin }],
    });
    const names = [...Deno.readDirSync(join(out, "0.9.0"))].map((e) => e.name).sort();
    assert.deepEqual(names, ["SHA256SUMS", "aegis-0.9.0-macos-arm64", "manifest.json"]);
  });
});

Deno.test("readVerifiedManifest() refuses tampering, other keys and signed oddities", () => {
  const key = generateReleaseKey();
  const secret = parseSecretKey(key.secretKeyText);
  const base: ReleaseManifest = {
    schema: 1,
    version: "2.0.0",
    created_at: "2026-01-01T00:00:00.000Z",
    artifacts: [{
      name: "aegis",
      os: "linux",
      arch: "x86_64",
      file: "aegis-2.0.0-linux-x86_64",
      sha256: "a".repeat(64),
      size: 10,
    }],
  };
  const comment = manifestTrustedComment("2.0.0", new Date());
  const signed = (value: unknown, tc = comment) => {
    const bytes = encode(JSON.stringify(value));
    return { bytes, sig: signDetached(bytes, secret, tc) };
  };
  const good = signed(base);
  assert.equal(readVerifiedManifest(good.bytes, good.sig, key.publicKeyText).version, "2.0.0");

  const tampered = encode(JSON.stringify({ ...base, version: "2.0.1" }));
  assert.throws(
    () => readVerifiedManifest(tampered, good.sig, key.publicKeyText),
    refused(/does not match/),
  );
  const other = generateReleaseKey();
  assert.throws(
    () => readVerifiedManifest(good.bytes, good.sig, other.publicKeyText),
    refused(/not the release key/),
  );

  const cases: [unknown, string, RegExp][] = [
    [base, "file:SHA256SUMS", /signature is for "SHA256SUMS"/],
    [base, comment.replace("version:2.0.0", "version:1.0.0"), /names version 1.0.0/],
    [{ ...base, extra: 1 }, comment, /schema/],
    [
      { ...base, artifacts: [{ ...base.artifacts[0], file: "evil" }] },
      comment,
      /not the file name/,
    ],
    [{ ...base, artifacts: [base.artifacts[0], base.artifacts[0]] }, comment, /listed twice/],
  ];
  for (const [value, tc, pattern] of cases) {
    const { bytes, sig } = signed(value, tc);
    assert.throws(
      () => readVerifiedManifest(bytes, sig, key.publicKeyText),
      refused(pattern),
      String(pattern),
    );
  }
  const huge = encode(" ".repeat(64 * 1024 + 1));
  assert.throws(
    () => readVerifiedManifest(huge, signDetached(huge, secret, comment), key.publicKeyText),
    refused(/larger than/),
  );
  const notJson = encode("\xff{");
  assert.throws(
    () => readVerifiedManifest(notJson, signDetached(notJson, secret, comment), key.publicKeyText),
    refused(/JSON/),
  );
});

const MINISIGN = ["/usr/bin/minisign", "/usr/local/bin/minisign"].find((p) => existsSync(p));

Deno.test({
  name: "readVerifiedManifest() accepts manifest.json signed by hand with `minisign -S`",
  ignore: !MINISIGN, // needs the real minisign (CI installs it from Debian)
  async fn() {
    await withRelease(async ({ out, bin, key }) => {
      await writeRelease({
        outDir: out,
        version: "5.0.0",
        secretKeyText: key.secretKeyText,
        artifacts: [{ name: "aegis", os: "linux", arch: "x86_64", path: bin }],
      });
      const dir = join(out, "5.0.0");
      await Deno.writeTextFile(join(out, "release.key"), key.secretKeyText, { mode: 0o600 });
      await Deno.remove(join(dir, MANIFEST_SIGNATURE_FILE));
      const signed = await new Deno.Command(MINISIGN!, {
        args: ["-S", "-s", join(out, "release.key"), "-m", MANIFEST_FILE],
        cwd: dir,
        stdout: "null",
      }).output();
      assert.ok(signed.success);
      const manifest = readVerifiedManifest(
        await Deno.readFile(join(dir, MANIFEST_FILE)),
        await Deno.readTextFile(join(dir, MANIFEST_SIGNATURE_FILE)),
        key.publicKeyText,
      );
      assert.equal(manifest.version, "5.0.0");
    });
  },
});
