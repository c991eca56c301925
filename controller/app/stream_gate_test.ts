import assert from "node:assert/strict";
import { MAX_RETRY_AFTER_MS, StreamGate } from "./stream_gate.ts";
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

/** The return time a refusal names, or a failed assertion when it names none. */
function retryAfter(admit: () => unknown): number {
  try {
    admit();
  } catch (error) {
    assert.ok(limited(error));
    const text = (error as AegisError).details.retry_after_ms;
    assert.match(text, /^\d+$/);
    return Number(text);
  }
  assert.fail("admitted");
}

Deno.test("StreamGate: refusals for a full pool name turns spaced by how fast it drains", () => {
  let now = 1000;
  const gate = new StreamGate("streams", 8, 4, { now: () => now, slotDeadlineMs: 10_000 });
  const releases = ["a", "b", "c", "d"].map((key) => gate.admit(key));
  // No stream has completed yet: the drain rate is unknown, the turns the tightest.
  assert.deepEqual([retryAfter(() => gate.admit("e")), retryAfter(() => gate.admit("f"))], [0, 1]);
  // Streams that completed after 400 ms: four slots drain one per 100 ms; the line goes on.
  now += 400;
  for (const release of releases) release(true);
  for (const key of ["a", "b", "c", "d"]) gate.admit(key);
  assert.deepEqual(
    [1, 2, 3].map(() => retryAfter(() => gate.admit("g"))),
    [100, 200, 300],
  );
  // Turns already given pass as time does.
  now += 250;
  assert.equal(retryAfter(() => gate.admit("h")), 150);
});

Deno.test("StreamGate: slots of streams that never complete do not slow the line", () => {
  let now = 0;
  const gate = new StreamGate("streams", 8, 2, { now: () => now, slotDeadlineMs: 10_000 });
  const done = gate.admit("a");
  const stuck = gate.admit("b");
  now += 200;
  done(true);
  now += 9_800;
  stuck(); // held to its deadline, without a Hello
  gate.admit("a");
  gate.admit("b");
  assert.equal(retryAfter(() => gate.admit("c")), 100); // 200 ms over 2 slots, not 10 s
});

Deno.test("StreamGate: the line never reaches past MAX_RETRY_AFTER_MS, nor a turn past the deadline's pace", () => {
  let now = 0;
  const gate = new StreamGate("streams", 8, 1, { now: () => now, slotDeadlineMs: 10_000 });
  const release = gate.admit("a");
  now += 3_600_000; // a slot held an hour counts as held for the deadline
  release(true);
  gate.admit("a");
  assert.equal(retryAfter(() => gate.admit("b")), 10_000);
  for (let i = 0; i < 20; i++) retryAfter(() => gate.admit("b"));
  assert.equal(retryAfter(() => gate.admit("b")), MAX_RETRY_AFTER_MS);
});

Deno.test("StreamGate: an address or prefix over its share gets no return time and takes no turn", () => {
  let now = 0;
  const gate = new StreamGate("streams", 1, 3, {
    now: () => now,
    prefixOf: (key) => key.split(".").slice(0, 3).join("."),
    perPrefixMax: 2,
  });
  const release = gate.admit("10.0.0.1");
  now += 300;
  release(true);
  gate.admit("10.0.0.1");
  gate.admit("10.0.0.2");
  gate.admit("10.0.1.1");
  assert.equal(retryAfter(() => gate.admit("10.0.2.1")), 100); // the pool is full: a turn
  for (let i = 0; i < 5; i++) {
    for (const key of ["10.0.0.1", "10.0.0.3"]) { // its address, its prefix
      assert.throws(() => gate.admit(key), (error: unknown) => {
        assert.ok(limited(error));
        // The daemon's own growing backoff applies: "now" had a crowded NAT retrying each second.
        assert.equal((error as AegisError).details.retry_after_ms, undefined);
        return true;
      });
    }
  }
  assert.equal(retryAfter(() => gate.admit("10.0.2.1")), 200);
});
