import assert from "node:assert/strict";
import { ensureDir, modeOf, readTextIfExists, writeFileAtomic } from "./atomic.ts";

Deno.test("writeFileAtomic() replaces the file whole with the requested mode", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/node.token`;
  await writeFileAtomic(path, "one", { mode: 0o644 });
  await writeFileAtomic(path, "two", { mode: 0o600 });
  assert.equal(await Deno.readTextFile(path), "two");
  assert.equal(await modeOf(path), 0o600);
  // No temp files are left beside it.
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert.deepEqual(names, ["node.token"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic() leaves the old file when the target directory vanished", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(() => writeFileAtomic(`${dir}/missing/x`, "data"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir() creates 0700 directories and reports whether it did", async () => {
  const dir = await Deno.makeTempDir();
  assert.equal(await ensureDir(`${dir}/a/b`), true);
  assert.equal(await modeOf(`${dir}/a/b`), 0o700);
  assert.equal(await ensureDir(`${dir}/a/b`), false);
  assert.equal(await readTextIfExists(`${dir}/nothing`), undefined);
  await Deno.remove(dir, { recursive: true });
});
