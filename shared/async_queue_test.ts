import assert from "node:assert/strict";
import { AsyncQueue } from "./async_queue.ts";

Deno.test("AsyncQueue delivers pushed items in order, then ends on close()", async () => {
  const queue = new AsyncQueue<number>();
  queue.push(1);
  setTimeout(() => {
    queue.push(2);
    queue.close();
  }, 5);
  const seen: number[] = [];
  for await (const n of queue) seen.push(n);
  assert.deepEqual(seen, [1, 2]);
  assert.equal(queue.push(3), false);
});

Deno.test("AsyncQueue.fail() rejects a waiting consumer after queued items", async () => {
  const queue = new AsyncQueue<number>();
  queue.push(1);
  queue.fail(new Error("gone"));
  assert.deepEqual(await queue.next(), { value: 1, done: false });
  await assert.rejects(queue.next(), { message: "gone" });
});
