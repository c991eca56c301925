import assert from "node:assert/strict";
import { realRunner } from "./runner.ts";

Deno.test("realRunner() returns exit code and output of a real process", async () => {
  const result = await realRunner(Deno.execPath(), ["eval", "console.log('out'); Deno.exit(3)"]);
  assert.notEqual(result, "not-found");
  if (result === "not-found") return;
  assert.equal(result.code, 3);
  assert.equal(result.stdout, "out\n");
});

Deno.test("realRunner() maps a missing binary to not-found", async () => {
  assert.equal(await realRunner("aegis-no-such-binary-7f3a", []), "not-found");
});
