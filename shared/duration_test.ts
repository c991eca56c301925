import assert from "node:assert/strict";
import { formatAge, parseDuration } from "./duration.ts";

Deno.test("parseDuration() reads units, combinations and plain seconds", () => {
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("45"), 45_000);
});

Deno.test("parseDuration() names the bad value and the expected form", () => {
  assert.throws(() => parseDuration("10 parsecs", "--timeout"), {
    message: /--timeout "10 parsecs" is not a duration: use a number with a unit/,
  });
  assert.throws(() => parseDuration("5x"), { code: "INVALID_ARGUMENT" } as never);
});

Deno.test("formatAge() prints short ages", () => {
  assert.equal(formatAge(4_200), "4s");
  assert.equal(formatAge(192_000), "3m12s");
  assert.equal(formatAge(7_500_000), "2h5m");
  assert.equal(formatAge(3 * 86_400_000), "3d");
});
