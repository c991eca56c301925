import assert from "node:assert/strict";
import { RateLimiter } from "./rate_limit.ts";

Deno.test("RateLimiter.take() allows the limit per window per key, then says how long to wait", () => {
  let now = 0;
  const limiter = new RateLimiter(5, 60_000, () => now);
  for (let i = 0; i < 5; i++) assert.equal(limiter.take("10.0.0.1"), 0);
  now = 10_000;
  assert.equal(limiter.take("10.0.0.1"), 50_000);
  assert.equal(limiter.take("10.0.0.2"), 0);
  now = 60_000;
  assert.equal(limiter.take("10.0.0.1"), 0);
});

Deno.test("RateLimiter.take() counts by bucket and keeps at most maxKeys buckets", () => {
  const now = 0;
  const limiter = new RateLimiter(1, 60_000, {
    now: () => now,
    bucket: (key) => key.split(":")[0],
    maxKeys: 100,
  });
  assert.equal(limiter.take("a:1"), 0);
  assert.ok(limiter.take("a:2") > 0);
  for (let i = 0; i < 1000; i++) limiter.take(`k${i}`);
  assert.ok(limiter.size <= 100);
});
