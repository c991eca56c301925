import assert from "node:assert/strict";
import { BoundedQueue } from "./bounded_queue.ts";

function queue(maxBytes: number, stallMs = 60_000) {
  return new BoundedQueue<Uint8Array>({
    maxBytes,
    stallMs,
    sizeOf: (item) => item.byteLength,
    onStall: () => new Error("stalled"),
  });
}

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);

Deno.test("BoundedQueue.put() waits for room and keeps order", async () => {
  const q = queue(10);
  assert.equal(await q.put(bytes(6, 1)), true);
  const second = q.put(bytes(6, 2)); // does not fit: waits
  const third = q.put(bytes(1, 3)); // would fit, but must not overtake the second
  assert.equal(q.bytes, 6);
  assert.deepEqual((await q.next()).value, bytes(6, 1));
  assert.equal(await second, true);
  assert.equal(await third, true);
  assert.equal(q.bytes, 7);
  assert.deepEqual((await q.next()).value, bytes(6, 2));
  assert.deepEqual((await q.next()).value, bytes(1, 3));
  q.close();
  assert.equal((await q.next()).done, true);
});

Deno.test("BoundedQueue never holds more than maxBytes, except one oversize item alone", async () => {
  const q = queue(100);
  assert.equal(await q.put(bytes(500)), true);
  assert.equal(q.bytes, 500);
  const waiting = q.put(bytes(1));
  assert.equal(q.bytes, 500);
  await q.next();
  assert.equal(await waiting, true);
  assert.equal(q.bytes, 1);
  q.close();
});

Deno.test("BoundedQueue fails with onStall() when a put waits too long", async () => {
  const q = queue(4, 20);
  assert.equal(await q.put(bytes(4, 1)), true);
  assert.equal(await q.put(bytes(4, 2)), false);
  assert.equal(q.closed, true);
  // What was queued before the stall is still delivered, then the error.
  assert.deepEqual((await q.next()).value, bytes(4, 1));
  await assert.rejects(q.next(), /stalled/);
  assert.equal(await q.put(bytes(1)), false);
});

Deno.test("BoundedQueue.close() releases waiting producers with false", async () => {
  const q = queue(1);
  await q.put(bytes(1));
  const waiting = q.put(bytes(1));
  q.close();
  assert.equal(await waiting, false);
  assert.equal((await q.next()).value?.byteLength, 1);
  assert.equal((await q.next()).done, true);
});

Deno.test("BoundedQueue hands an item straight to a waiting consumer", async () => {
  const q = queue(1);
  const next = q.next();
  assert.equal(await q.put(bytes(3)), true);
  assert.equal((await next).value?.byteLength, 3);
  assert.equal(q.bytes, 0);
  q.fail(new Error("gone"));
  await assert.rejects(q.next(), /gone/);
});
