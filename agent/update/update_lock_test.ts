import assert from "node:assert/strict";
import { join } from "node:path";
import { edgePaths } from "../state/paths.ts";
import { holdUpdateLock } from "./update_lock.ts";

Deno.test("holdUpdateLock() admits one holder and takes over a dead holder's lock", async () => {
  const home = await Deno.makeTempDir({ prefix: "aegis-lock-" });
  const paths = edgePaths(home);
  await Deno.mkdir(paths.dir, { recursive: true });
  try {
    const lock = await holdUpdateLock(paths);
    await assert.rejects(() => holdUpdateLock(paths), /another update is running/);
    await lock.release();
    // A lock left by a process that is gone.
    const child = new Deno.Command("true").spawn();
    await child.status;
    await Deno.writeTextFile(join(paths.dir, ".update.lock"), `${child.pid}\n`);
    const again = await holdUpdateLock(paths);
    await again.release();
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
