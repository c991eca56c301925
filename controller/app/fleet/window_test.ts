import assert from "node:assert/strict";
import { slidingWindow, type WindowEvent } from "./window.ts";

/** Work whose completion the test decides: gates[i] finishes item i. */
function gated(n: number) {
  const gates = Array.from({ length: n }, () => Promise.withResolvers<string>());
  return { gates, work: (_item: number, index: number) => gates[index].promise };
}

function describe(event: WindowEvent<number, string>): string {
  return event.type === "started" ? `start ${event.index}` : `done ${event.index}:${event.result}`;
}

Deno.test("slidingWindow() starts the next item as soon as any running one finishes", async () => {
  const { gates, work } = gated(5);
  const seen: string[] = [];
  const window = slidingWindow([0, 1, 2, 3, 4], 2, work);
  const pull = async () => describe((await window.next()).value as WindowEvent<number, string>);
  seen.push(await pull(), await pull()); // 0 and 1 start
  gates[1].resolve("b"); // the second finishes first: its slot goes to item 2 at once
  seen.push(await pull(), await pull());
  gates[2].resolve("c");
  seen.push(await pull(), await pull());
  gates[0].resolve("a");
  gates[3].resolve("d");
  gates[4].resolve("e");
  for await (const event of window) seen.push(describe(event));
  assert.deepEqual(seen, [
    "start 0",
    "start 1",
    "done 1:b",
    "start 2",
    "done 2:c",
    "start 3",
    "done 0:a",
    "start 4",
    "done 3:d",
    "done 4:e",
  ]);
});

Deno.test("slidingWindow() never runs more than its width at once", async () => {
  let running = 0;
  let most = 0;
  const work = async (item: number) => {
    most = Math.max(most, ++running);
    // A macrotask: every start the window can make happens before any of these returns.
    await new Promise((resolve) => setTimeout(resolve, item % 3));
    running--;
    return item;
  };
  const done: number[] = [];
  for await (const event of slidingWindow([...Array(50).keys()], 4, work)) {
    if (event.type === "done") done.push(event.result);
  }
  assert.equal(most, 4);
  assert.deepEqual(done.sort((a, b) => a - b), [...Array(50).keys()]);
});

Deno.test("slidingWindow() stops starting once stop() says so and returns how many started", async () => {
  let failures = 0;
  const window = slidingWindow(
    [0, 1, 2, 3, 4, 5],
    2,
    (item) => Promise.resolve(item < 3 ? "failed" : "ok"),
    () => failures >= 2,
  );
  const seen: string[] = [];
  let next = await window.next();
  while (!next.done) {
    seen.push(describe(next.value));
    if (next.value.type === "done" && next.value.result === "failed") failures++;
    next = await window.next();
  }
  // Items 0 and 1 fail; the window had already started 2 when 0 failed (one failure only),
  // and nothing starts after the second failure. The running item is still reported.
  assert.deepEqual(seen, [
    "start 0",
    "start 1",
    "done 0:failed",
    "start 2",
    "done 1:failed",
    "done 2:failed",
  ]);
  assert.equal(next.value, 3);
});

Deno.test("slidingWindow() rethrows a rejection in its turn", async () => {
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (
      const event of slidingWindow(
        [0, 1],
        1,
        (item) => item === 1 ? Promise.reject(new Error("boom")) : Promise.resolve(item),
      )
    ) if (event.type === "done") seen.push(event.result);
  }, /boom/);
  assert.deepEqual(seen, [0]);
});

Deno.test("slidingWindow() of nothing ends at once, having started none", async () => {
  const window = slidingWindow([], 10, () => Promise.resolve(0));
  assert.deepEqual(await window.next(), { done: true, value: 0 });
});
