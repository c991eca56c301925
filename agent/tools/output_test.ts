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

Deno.test("pump() emits chunks as they arrive and reads past the budget", async () => {
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
  assert.deepEqual(events.map((e) => e.case), ["stderr", "stderr", "stderr"]);
  assert.equal(
    text(events.map((e) => e.value as Uint8Array)),
    "abcdab\n[aegis: output truncated after 6 bytes]\n",
  );
});
