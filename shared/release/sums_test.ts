import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AegisError } from "../errors.ts";
import { copyFileHashed, parseSums, renderSums, sha256File, sha256Hex } from "./sums.ts";

const SHA256SUM = ["/usr/bin/sha256sum", "/bin/sha256sum"].find((p) => existsSync(p));
const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("renderSums() and parseSums() round-trip, and parseSums() reads binary mode", () => {
  const entries = [
    { sha256: sha256Hex(bytes("a")), file: "aegis-1.0.0-linux-x86_64" },
    { sha256: sha256Hex(bytes("b")), file: "manifest.json" },
  ];
  const text = renderSums(entries);
  assert.equal(text.split("\n")[0], `${entries[0].sha256}  aegis-1.0.0-linux-x86_64`);
  assert.deepEqual(parseSums(text), entries);
  assert.deepEqual(parseSums(text.replaceAll("  ", " *")), entries);
});

Deno.test("parseSums() refuses paths, duplicates, bad digests and oversized input", () => {
  const digest = sha256Hex(bytes("a"));
  for (
    const text of [
      `${digest}  ../etc/passwd\n`,
      `${digest}  dir/file\n`,
      `${digest}  .hidden\n`,
      `${digest}  a\n${digest}  a\n`,
      `${digest.toUpperCase()}  a\n`,
      `${digest.slice(1)}  a\n`,
      `${digest}\ta\n`,
      `${digest}  a\n`.repeat(400),
    ]
  ) {
    assert.throws(
      () => parseSums(text),
      (e: unknown) => e instanceof AegisError && e.code === "RELEASE_SIGNATURE_INVALID",
      text.slice(0, 80),
    );
  }
});

Deno.test("sha256File() and copyFileHashed() agree with sha256Hex() and copy exactly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = new Uint8Array(65536 * 3 + 17).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
    await Deno.writeFile(join(dir, "in"), data);
    const copied = await copyFileHashed(join(dir, "in"), join(dir, "out"), 0o755);
    assert.deepEqual(copied, { sha256: sha256Hex(data), size: data.length });
    assert.deepEqual(await sha256File(join(dir, "out")), copied);
    assert.deepEqual(await Deno.readFile(join(dir, "out")), data);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(join(dir, "out"))).mode! & 0o777, 0o755);
    }
    // It never overwrites: the release is written into a fresh directory.
    await assert.rejects(copyFileHashed(join(dir, "in"), join(dir, "out"), 0o755));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "`sha256sum -c` accepts renderSums() output and catches a changed file",
  ignore: !SHA256SUM, // needs coreutils sha256sum
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(join(dir, "a.bin"), "alpha");
      await Deno.writeTextFile(join(dir, "b.bin"), "beta");
      const sums = renderSums([
        { ...(await sha256File(join(dir, "a.bin"))), file: "a.bin" },
        { ...(await sha256File(join(dir, "b.bin"))), file: "b.bin" },
      ].map(({ sha256, file }) => ({ sha256, file })));
      await Deno.writeTextFile(join(dir, "SHA256SUMS"), sums);
      const check = () =>
        new Deno.Command(SHA256SUM!, { args: ["-c", "SHA256SUMS"], cwd: dir, stdout: "null" })
          .output();
      assert.ok((await check()).success);
      await Deno.writeTextFile(join(dir, "b.bin"), "betA");
      assert.equal((await check()).success, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
