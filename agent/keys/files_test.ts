import assert from "node:assert/strict";
import { join } from "node:path";
import { removeFilesDurable, writeFilesAtomic } from "./files.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  return out.sort();
}

Deno.test("writeFilesAtomic() replaces every file whole, with its mode, and leaves no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a"), "old a");
    await writeFilesAtomic([
      { path: join(dir, "a"), data: "new a", mode: 0o600 },
      { path: join(dir, "b"), data: "new b", mode: 0o644 },
    ]);
    assert.equal(await Deno.readTextFile(join(dir, "a")), "new a");
    assert.equal(await Deno.readTextFile(join(dir, "b")), "new b");
    assert.deepEqual(await names(dir), ["a", "b"]);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(join(dir, "a"))).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(join(dir, "b"))).mode! & 0o777, 0o644);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFilesAtomic() renames nothing when one file cannot be written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a"), "old a");
    await assert.rejects(
      writeFilesAtomic([
        { path: join(dir, "a"), data: "new a", mode: 0o600 },
        { path: join(dir, "missing", "b"), data: "new b", mode: 0o600 },
      ]),
      Deno.errors.NotFound,
    );
    assert.equal(await Deno.readTextFile(join(dir, "a")), "old a");
    assert.deepEqual(await names(dir), ["a"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeFilesDurable() removes the files present and ignores the missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a"), "a");
    await Deno.writeTextFile(join(dir, "keep"), "k");
    await removeFilesDurable([join(dir, "a"), join(dir, "gone")]);
    assert.deepEqual(await names(dir), ["keep"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
