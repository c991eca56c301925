import assert from "node:assert/strict";
import { detectTools } from "./inspect.ts";

Deno.test("detectTools() offers the tools whose executables are on PATH", async () => {
  const dir = await Deno.makeTempDir();
  for (const bin of ["bash", "kubectl"]) {
    await Deno.writeTextFile(`${dir}/${bin}`, "#!/bin/sh\n", { mode: 0o755 });
  }
  await Deno.writeTextFile(`${dir}/docker`, "not executable", { mode: 0o644 });
  assert.deepEqual(detectTools(`/nonexistent:${dir}`), ["shell", "kubectl"]);
  await Deno.remove(dir, { recursive: true });
});
