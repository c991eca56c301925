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
