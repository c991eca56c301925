import assert from "node:assert/strict";
import { asCompleted } from "./as_completed.ts";

/** A promise that counts how often anyone subscribes to it. */
function counted<T>(promise: Promise<T>, counter: { thens: number }): PromiseLike<T> {
  return {
    then(onValue, onError) {
      counter.thens++;
      return promise.then(onValue, onError);
    },
  };
}

Deno.test("asCompleted() yields results in the order they finish", async () => {
  const gates = [0, 1, 2].map(() => Promise.withResolvers<string>());
  const order: string[] = [];
  const done = (async () => {
    for await (const [key, value] of asCompleted(gates.map((g, i) => [i, g.promise] as const))) {
      order.push(`${key}:${value}`);
    }
  })();
  gates[2].resolve("c");
  gates[0].resolve("a");
  await Promise.resolve();
  gates[1].resolve("b");
  await done;
  assert.deepEqual(order, ["2:c", "0:a", "1:b"]);
});

Deno.test("asCompleted() subscribes to each of n promises once (linear, not n²)", async () => {
  const n = 300;
  const counter = { thens: 0 };
  const gates = Array.from({ length: n }, () => Promise.withResolvers<number>());
  const entries = gates.map((g, i) => [i, counted(g.promise, counter)] as const);
  const seen: number[] = [];
  const done = (async () => {
    for await (const [key] of asCompleted(entries)) seen.push(key);
  })();
  // Finish them one at a time, in reverse, so every result arrives while the rest still wait.
  for (let i = n - 1; i >= 0; i--) {
    gates[i].resolve(i);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await done;
  assert.equal(seen.length, n);
  assert.equal(counter.thens, n);
});

Deno.test("asCompleted() rethrows a rejection in its turn", async () => {
  const entries = [["ok", Promise.resolve(1)], ["bad", Promise.reject(new Error("boom"))]] as const;
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const [key] of asCompleted(entries)) seen.push(key);
  }, /boom/);
  assert.deepEqual(seen, ["ok"]);
});

Deno.test("asCompleted() of nothing ends at once", async () => {
  for await (const _ of asCompleted([])) assert.fail("yielded");
});
