import assert from "node:assert/strict";
import { requireBounded } from "./bounds.ts";

Deno.test("requireBounded() refuses an attested name with control or format characters", () => {
  requireBounded("hostname", "web-1.example.com");
  requireBounded("hostname", "büro-rechner");
  for (const [value, code] of [["web\u001b[2J", "U+001B"], ["a\u202Eb", "U+202E"]]) {
    assert.throws(() => requireBounded("hostname", value), {
      code: "INVALID_ARGUMENT",
      message: new RegExp(`hostname holds the control character ${code.replace("+", "\\+")}`),
    });
  }
  assert.throws(() => requireBounded("hostname", "h".repeat(254)), { code: "INVALID_ARGUMENT" });
});
