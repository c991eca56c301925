import assert from "node:assert/strict";
import { AegisError } from "../errors.ts";
import { buildInfo, releaseVerificationKey, SOURCE_VERSION, versionLine } from "./build_info.ts";
import { VERSION } from "../version.ts";

// A release build's side (version and key compiled in) is tested end to end in
// tests/release/build_test.ts, through a real build; here is the source run.

Deno.test("a source run reports SOURCE_VERSION and has no release key", () => {
  assert.deepEqual(buildInfo(), { version: SOURCE_VERSION, kind: "source" });
  assert.equal(VERSION, SOURCE_VERSION);
});

Deno.test("releaseVerificationKey() refuses in a source run (fail-closed)", () => {
  assert.throws(
    () => releaseVerificationKey(),
    (e: unknown) =>
      e instanceof AegisError && e.code === "RELEASE_KEY_MISSING" &&
      /no release key compiled in.*self-update is refused/.test(e.message),
  );
});

Deno.test("versionLine() starts with the bare version and names the key or its absence", () => {
  const release = versionLine({
    version: "1.2.3",
    kind: "release",
    releaseKeyId: "ABCDEF0123456789",
  });
  assert.equal(release, "1.2.3 (release key ABCDEF0123456789)");
  for (const kind of ["unsigned", "source"] as const) {
    const line = versionLine({ version: "1.2.3", kind });
    assert.equal(line.split(" ")[0], "1.2.3");
    assert.match(line, /no release key, self-update refused/);
  }
});
