import assert from "node:assert/strict";
import { isBehind } from "./release_lag.ts";

Deno.test("isBehind() is null when either version is unknown", () => {
  assert.equal(isBehind("1.0.0", "1.1.0"), true);
  assert.equal(isBehind("1.1.0", "1.1.0"), false);
  assert.equal(isBehind("1.2.0", "1.1.0"), false);
  assert.equal(isBehind(undefined, "1.1.0"), null);
  assert.equal(isBehind("dev", "1.1.0"), null);
  assert.equal(isBehind("1.0.0", undefined), null);
});
