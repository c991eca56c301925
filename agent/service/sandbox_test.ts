import assert from "node:assert/strict";
import { join } from "node:path";
import { homeReadOnlyPaths, isUnder } from "./sandbox.ts";

Deno.test("homeReadOnlyPaths() binds a compiled binary only when it lives in home", async () => {
  assert.deepEqual(await homeReadOnlyPaths(["/usr/local/bin/aegis"], "/home/al"), []);
  assert.deepEqual(await homeReadOnlyPaths(["/home/al/bin/aegis"], "/home/al"), [
    "/home/al/bin/aegis",
  ]);
});

Deno.test("homeReadOnlyPaths() binds the project and module cache under `deno run`", async () => {
  const home = await Deno.makeTempDir();
  try {
    const project = join(home, "src", "aegis");
    await Deno.mkdir(join(project, "agent"), { recursive: true });
    await Deno.writeTextFile(join(project, "deno.json"), "{}");
    await Deno.mkdir(join(home, ".cache", "deno"), { recursive: true });
    const deno = join(home, ".deno", "bin", "deno");
    const command = [deno, "run", "-A", join(project, "agent", "main.ts")];
    assert.deepEqual(await homeReadOnlyPaths(command, home), [
      deno,
      project,
      join(home, ".cache", "deno"),
    ]);
    // Without a cache there is nothing to bind for it.
    await Deno.remove(join(home, ".cache"), { recursive: true });
    assert.deepEqual(await homeReadOnlyPaths(command, home), [deno, project]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("isUnder() compares whole path segments", () => {
  assert.ok(isUnder("/home/al/x", "/home/al"));
  assert.ok(!isUnder("/home/alice/x", "/home/al"));
});
