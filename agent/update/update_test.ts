import assert from "node:assert/strict";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { generateReleaseKey, parsePublicKey } from "../../shared/release/minisign.ts";
import { edgePaths } from "../state/paths.ts";
import { runUpdate } from "./update.ts";

Deno.test("runUpdate() takes the update lock before it looks at the release or `current`", async () => {
  const home = await Deno.makeTempDir({ prefix: "aegis-update-lock-" });
  const paths = edgePaths(home);
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  // Nothing listens on port 9: a check made before the lock would fail UNREACHABLE instead.
  await Deno.writeTextFile(paths.config, `cluster:\n  endpoints: ["http://127.0.0.1:9"]\n`);
  // A fleet upgrade in this daemon (a live pid: ours) holds the lock.
  await Deno.writeTextFile(join(paths.dir, ".update.lock"), `${Deno.pid}\n`);
  const key = generateReleaseKey("update_test");
  try {
    await assert.rejects(
      () =>
        runUpdate(paths, {
          check: false,
          deadlineMs: 10_000,
          publicKey: () => parsePublicKey(key.publicKeyText),
        }, () => {}),
      (error) => error instanceof AegisError && error.code === "CONFLICT",
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
