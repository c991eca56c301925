import assert from "node:assert/strict";
import { backoffDelay, refusalDelay, refusalRetryAfterMs, sleep } from "./backoff.ts";
import { AegisError } from "../../shared/errors.ts";

Deno.test("backoffDelay() grows exponentially up to the cap, drawn with full jitter", () => {
  const policy = { baseMs: 1000, capMs: 60_000 };
  assert.equal(backoffDelay(0, policy, () => 1), 1000);
  assert.equal(backoffDelay(3, policy, () => 1), 8000);
  assert.equal(backoffDelay(10, policy, () => 1), 60_000);
  assert.equal(backoffDelay(500, policy, () => 0.5), 30_000);
  assert.equal(backoffDelay(3, policy, () => 0), 0);
});

Deno.test("backoffDelay() never waits longer than the failures have lasted (at least base)", () => {
  const policy = { baseMs: 1000, capMs: 60_000 };
  // Eight quick failures in 4 s: the count says up to 60 s, the outage's age says 4 s.
  assert.equal(backoffDelay(8, policy, () => 1, 4_000), 4_000);
  assert.equal(backoffDelay(8, policy, () => 1, 200), 1000);
  // A long outage: the count and the cap decide, as before.
  assert.equal(backoffDelay(3, policy, () => 1, 120_000), 8000);
  assert.equal(backoffDelay(10, policy, () => 1, 120_000), 60_000);
});

Deno.test("sleep() returns at once when aborted", async () => {
  const controller = new AbortController();
  const started = Date.now();
  const pending = sleep(60_000, controller.signal);
  controller.abort();
  await pending;
  assert.ok(Date.now() - started < 1000);
});

Deno.test("refusalRetryAfterMs() reads a refusal's return time, bounded by the cap", () => {
  const policy = { baseMs: 1000, capMs: 30_000 };
  const refused = (details: Record<string, string>, code: "RATE_LIMITED" | "UNREACHABLE") =>
    new AegisError(code, "no room", { details });
  assert.equal(
    refusalRetryAfterMs(refused({ retry_after_ms: "2500" }, "RATE_LIMITED"), policy),
    2500,
  );
  assert.equal(
    refusalRetryAfterMs(refused({ retry_after_ms: "999999" }, "RATE_LIMITED"), policy),
    30_000,
  );
  // No hint, a hint that is not a count of ms, or another failure: the ordinary backoff.
  assert.equal(refusalRetryAfterMs(refused({}, "RATE_LIMITED"), policy), undefined);
  for (const bad of ["-5", "1e9", "soon", ""]) {
    assert.equal(
      refusalRetryAfterMs(refused({ retry_after_ms: bad }, "RATE_LIMITED"), policy),
      undefined,
    );
  }
  assert.equal(
    refusalRetryAfterMs(refused({ retry_after_ms: "2500" }, "UNREACHABLE"), policy),
    undefined,
  );
});

Deno.test("refusalDelay() is the named time plus one base of jitter, doubling after three refusals in a row", () => {
  const policy = { baseMs: 1000, capMs: 60_000 };
  assert.equal(refusalDelay(2500, 1, policy, () => 0), 2500);
  assert.equal(refusalDelay(2500, 1, policy, () => 1), 3500);
  assert.equal(refusalDelay(0, 1, policy, () => 0.5), 500);
  assert.equal(refusalDelay(600_000, 1, policy, () => 0), 60_000);
  // A pool that keeps refusing the turns it names (held by streams that never say Hello): the
  // fleet spreads out as for an outage instead of knocking every second.
  assert.equal(refusalDelay(100, 3, policy, () => 1), 1100);
  assert.equal(refusalDelay(100, 4, policy, () => 1), 2100);
  assert.equal(refusalDelay(100, 6, policy, () => 1), 8100);
  assert.equal(refusalDelay(100, 40, policy, () => 1), 60_100);
  assert.equal(refusalDelay(100, 6, policy, () => 0), 100);
});
