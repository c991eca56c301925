import assert from "node:assert/strict";
import { StreamGate } from "./stream_gate.ts";
import { AegisError } from "../../shared/errors.ts";

const limited = (e: unknown) => e instanceof AegisError && e.code === "RATE_LIMITED";

Deno.test("StreamGate.admit() caps per key and in all, and a release frees one slot once", () => {
  const gate = new StreamGate("test streams", 2, 3);
  const a1 = gate.admit("a");
  gate.admit("a");
  assert.throws(() => gate.admit("a"), limited);
  gate.admit("b");
  assert.throws(() => gate.admit("c"), limited);
  a1();
  a1();
  assert.equal(gate.size, 2);
  gate.admit("c");
  assert.throws(() => gate.admit("a"), limited);
});
