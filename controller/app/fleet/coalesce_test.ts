import assert from "node:assert/strict";
import { Coalescer } from "./coalesce.ts";

Deno.test("Coalescer sends the first item at once and the rest together in the next batch", async () => {
  const batches: number[][] = [];
  const gate = Promise.withResolvers<void>();
  const coalescer = new Coalescer<number, number>(async (items) => {
    batches.push(items);
    if (batches.length === 1) await gate.promise;
    return items.map((i) => i * 10);
  });
  const first = coalescer.submit(1);
  const rest = [2, 3, 4].map((i) => coalescer.submit(i));
  gate.resolve();
  assert.deepEqual(await Promise.all([first, ...rest]), [10, 20, 30, 40]);
  assert.deepEqual(batches, [[1], [2, 3, 4]]);
});

Deno.test("Coalescer caps a batch at maxBatch items", async () => {
  const sizes: number[] = [];
  const gate = Promise.withResolvers<void>();
  const coalescer = new Coalescer<number, number>(async (items) => {
    sizes.push(items.length);
    if (sizes.length === 1) await gate.promise;
    return items;
  }, 3);
  const all = [...Array(8).keys()].map((i) => coalescer.submit(i));
  gate.resolve();
  assert.deepEqual(await Promise.all(all), [...Array(8).keys()]);
  assert.deepEqual(sizes, [1, 3, 3, 1]);
});

Deno.test("Coalescer fails only the items of a failed batch", async () => {
  let calls = 0;
  const gate = Promise.withResolvers<void>();
  const coalescer = new Coalescer<number, number>(async (items) => {
    calls++;
    if (calls === 1) {
      await gate.promise;
      throw new Error("statement failed");
    }
    return items;
  });
  const first = coalescer.submit(1);
  const second = coalescer.submit(2);
  gate.resolve();
  await assert.rejects(first, /statement failed/);
  assert.equal(await second, 2);
});
