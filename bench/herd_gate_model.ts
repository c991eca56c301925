// A model of a restarted controller's admission, in one process and simulated time: N daemons
// reconnect through the real StreamGate (pool 1,024, 128 per /24, 16 per address) and the real
// backoff functions, to a controller that checks Hellos one after another at `rate` per second.
// It compares refused daemons that follow their own backoff with ones that come back at the
// return time the refusal names (details.retry_after_ms), against the floor (down time + N/rate).
// Refusals cost nothing here, so it shows the pacing alone; bench:scale measures the real thing.
//
//   deno run -A bench/herd_gate_model.ts [--daemons 5000,15000] [--rate 300,500] [--down 2000]
import { parseArgs } from "node:util";
import { StreamGate } from "../controller/app/stream_gate.ts";
import { backoffDelay, DEFAULT_BACKOFF, refusalDelay } from "../agent/daemon/backoff.ts";
import { AegisError } from "../shared/errors.ts";

interface Event {
  at: number;
  run: () => void;
}

/** A binary min-heap of events by time. */
class Timeline {
  readonly #heap: Event[] = [];
  now = 0;

  at(at: number, run: () => void): void {
    const heap = this.#heap;
    heap.push({ at, run });
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= heap[i].at) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  /** Runs every event in time order, events scheduled meanwhile included. */
  drain(): void {
    const heap = this.#heap;
    while (heap.length > 0) {
      const next = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        for (let i = 0;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && heap[l].at < heap[m].at) m = l;
          if (r < heap.length && heap[r].at < heap[m].at) m = r;
          if (m === i) break;
          [heap[m], heap[i]] = [heap[i], heap[m]];
          i = m;
        }
      }
      this.now = next.at;
      next.run();
    }
  }
}

interface Outcome {
  daemons: number;
  rate: number;
  followsReturnTime: boolean;
  backS: number;
  floorS: number;
  refusals: number;
}

function simulate(daemons: number, rate: number, followsReturnTime: boolean, downMs: number) {
  const time = new Timeline();
  const gate = new StreamGate("streams", 16, 1024, {
    now: () => time.now,
    prefixOf: (key) => key.split(".").slice(0, 3).join("."),
    perPrefixMax: 128,
  });
  let checkerFreeAt = 0;
  let refusals = 0;
  let lastBack = 0;
  for (let i = 0; i < daemons; i++) {
    // 250 daemons per /24, as bench:scale places them.
    const address = `10.${Math.floor(i / 62_500)}.${Math.floor(i / 250) % 250}.${1 + (i % 250)}`;
    let failures = 1;
    let refusedInRow = 0;
    const attempt = () => {
      const retry = (waitMs: number) => time.at(time.now + waitMs, attempt);
      failures++;
      if (time.now < downMs) {
        return retry(backoffDelay(failures, DEFAULT_BACKOFF, Math.random, time.now));
      }
      let release: (completed?: boolean) => void;
      try {
        release = gate.admit(address);
      } catch (error) {
        refusals++;
        const named = (error as AegisError).details.retry_after_ms;
        refusedInRow = named === undefined ? 0 : refusedInRow + 1;
        return retry(
          followsReturnTime && named !== undefined
            ? refusalDelay(Number(named), refusedInRow)
            : backoffDelay(failures, DEFAULT_BACKOFF, Math.random, time.now),
        );
      }
      // Hellos are checked one after another: this one when those before it are done.
      checkerFreeAt = Math.max(time.now, checkerFreeAt) + 1000 / rate;
      time.at(checkerFreeAt, () => {
        release(true);
        lastBack = time.now;
      });
    };
    time.at(Math.random() * 1000, attempt); // the streams drop within a second of the kill
  }
  time.drain();
  const round = (ms: number) => Math.round(ms / 100) / 10;
  return {
    daemons,
    rate,
    followsReturnTime,
    backS: round(lastBack),
    floorS: round(downMs + (daemons / rate) * 1000),
    refusals,
  } satisfies Outcome;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      daemons: { type: "string", default: "5000,15000" },
      rate: { type: "string", default: "300,500" },
      down: { type: "string", default: "2000" },
    },
  });
  const list = (text: string) => text.split(",").map(Number);
  for (const daemons of list(values.daemons)) {
    for (const rate of list(values.rate)) {
      for (const follows of [false, true]) {
        const o = simulate(daemons, rate, follows, Number(values.down));
        console.log(
          `${o.daemons} daemons, ${o.rate} Hellos/s, ` +
            `${follows ? "return time followed" : "own backoff only  "}: all back after ` +
            `${o.backS} s (floor ${o.floorS} s), ${o.refusals} refusals`,
        );
      }
    }
  }
}
