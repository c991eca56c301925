import assert from "node:assert/strict";
import { readBounded } from "./bounded_body.ts";

function streamOf(chunks: number[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const size of chunks) controller.enqueue(new Uint8Array(size));
      controller.close();
    },
  });
}

Deno.test("readBounded() refuses a declared length over the cap before reading", async () => {
  const response = new Response("x".repeat(10), { headers: { "content-length": "10" } });
  await assert.rejects(() => readBounded(response, 9, "manifest.json"), /larger than the 9 bytes/);
});

Deno.test("readBounded() cuts off a body that streams past the cap", async () => {
  await assert.rejects(
    () => readBounded(new Response(streamOf([4, 4, 4])), 10, "manifest.json"),
    (error: Error & { code?: string }) => error.code === "RELEASE_SIGNATURE_INVALID",
  );
  assert.equal((await readBounded(new Response(streamOf([4, 4, 2])), 10, "m")).length, 10);
});
