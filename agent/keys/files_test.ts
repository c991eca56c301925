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

Deno.test("writeFilesAtomic() links a durable copy holding the same bytes, and writes otherwise", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a.new"), "same");
    await Deno.writeTextFile(join(dir, "b.new"), "other");
    await writeFilesAtomic([
      { path: join(dir, "a"), data: "same", mode: 0o600, durableCopy: join(dir, "a.new") },
      { path: join(dir, "b"), data: "wanted", mode: 0o600, durableCopy: join(dir, "b.new") },
      { path: join(dir, "c"), data: "c", mode: 0o600, durableCopy: join(dir, "missing") },
    ]);
    assert.equal(await Deno.readTextFile(join(dir, "a")), "same");
    assert.equal(await Deno.readTextFile(join(dir, "b")), "wanted");
    assert.equal(await Deno.readTextFile(join(dir, "b.new")), "other", "the copy is untouched");
    assert.equal(await Deno.readTextFile(join(dir, "c")), "c");
    assert.deepEqual(await names(dir), ["a", "a.new", "b", "b.new", "c"]);
    if (Deno.build.os !== "windows") {
      const [a, copy, b] = await Promise.all(
        ["a", "a.new", "b"].map((name) => Deno.stat(join(dir, name))),
      );
      assert.equal(a.ino, copy.ino, "the same bytes were linked, not written again");
      assert.notEqual(b.ino, copy.ino);
      assert.equal(a.mode! & 0o777, 0o600);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
