import assert from "node:assert/strict";
import { OutputBudget, pump } from "./output.ts";
import type { ToolEventBody } from "./types.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (chunks: Uint8Array[]) => chunks.map((c) => new TextDecoder().decode(c)).join("");

Deno.test("OutputBudget.take() cuts the crossing chunk and adds the marker once", () => {
  const budget = new OutputBudget(8);
  assert.equal(text(budget.take(bytes("12345"))), "12345");
  assert.equal(budget.truncated, false);
  assert.equal(text(budget.take(bytes("6789"))), "678\n[aegis: output truncated after 8 bytes]\n");
  assert.equal(budget.truncated, true);
  assert.deepEqual(budget.take(bytes("more")), []);
});

Deno.test("OutputBudget.take() allows exactly max bytes without truncating", () => {
  const budget = new OutputBudget(4);
  assert.equal(text(budget.take(bytes("1234"))), "1234");
  assert.equal(budget.truncated, false);
  assert.equal(text(budget.take(bytes("5"))), "\n[aegis: output truncated after 4 bytes]\n");
});

Deno.test("pump() coalesces a burst and reads past the budget", async () => {
  const events: ToolEventBody[] = [];
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (++pulled > 4) return controller.close();
      controller.enqueue(bytes("abcd"));
    },
  });
  await pump(stream, "stderr", new OutputBudget(6), (e) => events.push(e)).done;
  assert.equal(pulled, 5, "the stream should be read to its end");
  // Four reads in one burst leave as one event, cut at the budget and followed by the marker.
  assert.deepEqual(events.map((e) => e.case), ["stderr", "stderr"]);
  assert.equal(
    text(events.map((e) => e.value as Uint8Array)),
    "abcdab\n[aegis: output truncated after 6 bytes]\n",
  );
});

Deno.test("pump() sends a slow stream's output as it comes, not at the end", async () => {
  const events: string[] = [];
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 2) return controller.close();
      if (sent > 0) await new Promise((r) => setTimeout(r, 50));
      sent++;
      controller.enqueue(bytes(`line${sent}\n`));
    },
  });
  const seenBeforeSecond: number[] = [];
  const running = pump(stream, "stdout", new OutputBudget(1000), (e) => {
    events.push(new TextDecoder().decode(e.value as Uint8Array));
    seenBeforeSecond.push(sent);
  });
  await running.done;
  assert.deepEqual(events, ["line1\n", "line2\n"]);
  assert.equal(seenBeforeSecond[0], 1, "the first line left before the second was read");
});
