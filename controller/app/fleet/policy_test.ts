import assert from "node:assert/strict";
import { parseErrorPolicy, parseMode, waves } from "./policy.ts";

Deno.test("parseMode() and waves() cut hosts into sequential, rolling and parallel waves", () => {
  const hosts = [1, 2, 3, 4, 5];
  assert.deepEqual(waves(hosts, parseMode("sequential")), [[1], [2], [3], [4], [5]]);
  assert.deepEqual(waves(hosts, parseMode("rolling=2")), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(waves(hosts, parseMode("parallel")), [[1, 2, 3, 4, 5]]);
  assert.throws(() => parseMode("rolling=0"), { message: /--mode "rolling=0" is not sequential/ });
  assert.throws(() => parseMode("fast"), { code: "INVALID_ARGUMENT" } as never);
});

Deno.test("parseErrorPolicy() reads continue, stop-after=N and fail-fast", () => {
  assert.equal(parseErrorPolicy("continue").stopAfter, Infinity);
  assert.equal(parseErrorPolicy("fail-fast").stopAfter, 1);
  assert.equal(parseErrorPolicy("stop-after=3").stopAfter, 3);
  assert.throws(() => parseErrorPolicy("stop-after=x"), { message: /--on-error "stop-after=x"/ });
});
