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

Deno.test("StreamGate: a full pool evicts the most crowded prefix's oldest for a newcomer", () => {
  const prefixOf = (key: string) => key.split(".").slice(0, 3).join(".");
  const gate = new StreamGate("test streams", 4, 8, { prefixOf, perPrefixMax: 6 });
  const evicted: string[] = [];
  const admit = (key: string, name: string) =>
    gate.admit(key, () => {
      evicted.push(name);
    });
  // One /24 may hold 6 of the 8 slots, however many addresses it spreads them over.
  for (let i = 0; i < 6; i++) admit(`10.0.0.${i % 3}`, `crowd-${i}`);
  assert.throws(() => admit("10.0.0.9", "seventh"), limited);
  admit("10.0.1.1", "n1");
  admit("10.0.1.1", "n2");
  assert.equal(gate.size, 8);
  // Full: a fresh prefix takes the crowd's oldest slot instead of being refused.
  admit("192.0.2.7", "daemon");
  assert.deepEqual(evicted, ["crowd-0"]);
  assert.equal(gate.size, 8);
  // A prefix no more crowded than the newcomer's own does not give way.
  const small = new StreamGate("test streams", 4, 2, { prefixOf });
  small.admit("10.0.0.1", () => {
    evicted.push("x");
  });
  small.admit("10.0.1.1", () => {
    evicted.push("y");
  });
  assert.throws(() => small.admit("10.0.2.1"), limited);
});

Deno.test("StreamGate: a stream younger than evictableAfterMs is never evicted", async () => {
  const gate = new StreamGate("streams", 8, 2, {
    prefixOf: (key) => key.split(".").slice(0, 3).join("."),
    evictableAfterMs: 200,
  });
  let evicted = 0;
  gate.admit("10.0.0.1", () => {
    evicted++;
  });
  gate.admit("10.0.0.2", () => {
    evicted++;
  });
  // The pool is full of fresh streams: a newcomer is refused, nobody is evicted.
  assert.throws(() => gate.admit("10.0.9.1"), /too many streams on this controller/);
  assert.equal(evicted, 0);
  await new Promise((resolve) => setTimeout(resolve, 250));
  gate.admit("10.0.9.1");
  assert.equal(evicted, 1);
});

Deno.test("StreamGate: a victim that declines (it is authenticating) keeps its slot", () => {
  const gate = new StreamGate("streams", 8, 3, {
    prefixOf: (key) => key.split(".").slice(0, 3).join("."),
  });
  const calls: string[] = [];
  gate.admit("10.0.0.1", () => {
    calls.push("busy");
    return false;
  });
  gate.admit("10.0.0.2", () => {
    calls.push("idle");
  });
  gate.admit("10.0.0.3");
  gate.admit("10.0.9.1");
  assert.deepEqual(calls, ["busy", "idle"]);
  assert.equal(gate.size, 3);
});
