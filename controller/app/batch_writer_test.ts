import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { BatchWriter } from "./batch_writer.ts";

Deno.test("BatchWriter writes rows queued in one turn with one flush, in order", async () => {
  const flushes: number[][] = [];
  const writer = new BatchWriter<number>((rows) => {
    flushes.push(rows);
    return Promise.resolve();
  });
  await Promise.all([1, 2, 3].map((n) => writer.write(n)));
  assert.deepEqual(flushes, [[1, 2, 3]]);
});

Deno.test("BatchWriter queues rows written during a flush for the next one", async () => {
  const flushes: number[][] = [];
  let release!: () => void;
  let flushStarted!: () => void;
  const started = new Promise<void>((resolve) => flushStarted = resolve);
  const writer = new BatchWriter<number>(async (rows) => {
    flushes.push(rows);
    if (flushes.length === 1) {
      const held = new Promise<void>((resolve) => release = resolve);
      flushStarted();
      await held;
    }
  });
  const first = writer.write(1);
  await started;
  const later = [writer.write(2), writer.write(3)];
  release();
  await Promise.all([first, ...later]);
  assert.deepEqual(flushes, [[1], [2, 3]]);
});

Deno.test("BatchWriter rejects the rows of a failed flush and goes on with the next", async () => {
  let fail = true;
  const written: number[] = [];
  const writer = new BatchWriter<number>((rows) => {
    if (fail) {
      fail = false;
      return Promise.reject(new Error("database away"));
    }
    written.push(...rows);
    return Promise.resolve();
  });
  await assert.rejects(writer.write(1), /database away/);
  await writer.write(2);
  assert.deepEqual(written, [2]);
});

Deno.test("BatchWriter bounds a flush to maxBatch rows", async () => {
  const flushes: number[][] = [];
  const writer = new BatchWriter<number>((rows) => {
    flushes.push(rows);
    return Promise.resolve();
  }, { maxBatch: 2 });
  await Promise.all([1, 2, 3, 4, 5].map((n) => writer.write(n)));
  assert.deepEqual(flushes, [[1, 2], [3, 4], [5]]);
  assert.equal(writer.pending, 0);
});

Deno.test("BatchWriter flushes in its own async context, not the first writer's", async () => {
  const als = new AsyncLocalStorage<string>();
  const seen: (string | undefined)[] = [];
  const writer = new BatchWriter<number>(() => {
    seen.push(als.getStore());
    return Promise.resolve();
  });
  await als.run("inside a transaction", () => writer.write(1));
  assert.deepEqual(seen, [undefined]);
});

Deno.test("a batch the database refuses for one row's data is written row by row: only that row fails", async () => {
  const written: string[][] = [];
  const writer = new BatchWriter<string>((rows) => {
    written.push(rows);
    if (rows.includes("bad")) {
      return Promise.reject(Object.assign(new Error("invalid byte sequence"), { code: "22021" }));
    }
    return Promise.resolve();
  });
  const results = await Promise.allSettled(["a", "bad", "b"].map((row) => writer.write(row)));
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.deepEqual(written, [["a", "bad", "b"], ["a"], ["bad"], ["b"]]);
});

Deno.test("a batch that failed for another reason (the database unreachable) fails whole, without retries", async () => {
  let flushes = 0;
  const writer = new BatchWriter<string>(() => {
    flushes++;
    return Promise.reject(new Error("connection refused"));
  });
  const results = await Promise.allSettled(["a", "b"].map((row) => writer.write(row)));
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  assert.equal(flushes, 1);
});
