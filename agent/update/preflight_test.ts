import assert from "node:assert/strict";
import { join } from "node:path";
import { preflight } from "./preflight.ts";

async function script(body: string): Promise<{ dir: string; path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "aegis-preflight-" });
  const path = join(dir, "aegis");
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return { dir, path };
}

Deno.test({
  name: "preflight() accepts a binary that reports the manifest's version",
  ignore: Deno.build.os === "windows", // the fixtures are shell scripts
  async fn() {
    const { dir, path } = await script('echo "1.1.0 (release key 0123456789ABCDEF)"');
    try {
      await preflight(path, "1.1.0");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "preflight() refuses another version, a failing binary and one that cannot start",
  ignore: Deno.build.os === "windows", // the fixtures are shell scripts
  async fn() {
    const other = await script("echo 1.0.0");
    const failing = await script("echo 'cannot load' >&2; exit 3");
    try {
      await assert.rejects(() => preflight(other.path, "1.1.0"), /reports version "1\.0\.0"/);
      await assert.rejects(() => preflight(failing.path, "1.1.0"), /exited 3: cannot load/);
      await assert.rejects(
        () => preflight(join(other.dir, "missing"), "1.1.0"),
        (error: Error & { code?: string }) => error.code === "UPDATE_FAILED",
      );
    } finally {
      await Deno.remove(other.dir, { recursive: true });
      await Deno.remove(failing.dir, { recursive: true });
    }
  },
});
