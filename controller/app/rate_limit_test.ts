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

Deno.test("RateLimiter.take() stays O(1) per new key once full (no scan of every bucket)", () => {
  // Review finding 4: eviction used to scan all buckets on each new key past maxKeys, so this
  // loop was quadratic (20,000 x 20,000 checks, many seconds); now it is a few milliseconds.
  let now = 0;
  const limiter = new RateLimiter(5, 60_000, { now: () => now, maxKeys: 20_000 });
  for (let i = 0; i < 20_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
  const started = performance.now();
  for (let i = 0; i < 20_000; i++) {
    now += 1;
    limiter.take(`10.1.${i >> 8}.${i & 255}`);
  }
  const ms = performance.now() - started;
  assert.equal(limiter.size, 20_000);
  assert.ok(ms < 1500, `20,000 new keys past a full limiter took ${ms.toFixed(0)} ms`);
  // The least recently used went first: the newest key is still limited, the oldest forgotten.
  for (let i = 0; i < 4; i++) limiter.take("10.1.78.31");
  assert.ok(limiter.take("10.1.78.31") > 0);
});
