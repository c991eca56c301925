// Streams a child's stdout and stderr out as chunks arrive, under one byte budget shared by both:
// a call's output cost is what the controller has to carry, whichever stream it came on.
import type { ToolEventBody } from "./types.ts";

type StreamName = "stdout" | "stderr";

export class OutputBudget {
  #used = 0;
  #truncated = false;

  constructor(readonly maxBytes: number) {}

  get truncated(): boolean {
    return this.#truncated;
  }

  /** The part of `chunk` still within budget; on the chunk that crosses it, the marker follows. */
  take(chunk: Uint8Array): Uint8Array[] {
    if (this.#truncated) return [];
    const room = this.maxBytes - this.#used;
    this.#used += chunk.byteLength;
    if (chunk.byteLength <= room) return [chunk];
    this.#truncated = true;
    const marker = new TextEncoder().encode(
      `\n[aegis: output truncated after ${this.maxBytes} bytes]\n`,
    );
    return room > 0 ? [chunk.subarray(0, room), marker] : [marker];
  }
}

export interface Pump {
  /** Resolves when the stream ends or is cancelled; never rejects. */
  done: Promise<void>;
  /** Stops reading, for pipes held open by processes that outlived the call. */
  cancel(): void;
}

/** Output read within this long of the previous read goes out in one event. */
const COALESCE_MS = 2;
/** ...up to this many bytes: each event is one signed envelope, so fewer, larger ones carry more. */
const MAX_EVENT_BYTES = 256 * 1024;
const IDLE = Symbol("idle");

/**
 * Reads to the end even past the budget, so a chatty child never blocks on a full pipe. A burst
 * of small reads is sent as one event; a quiet stream's output still leaves within milliseconds.
 */
export function pump(
  stream: ReadableStream<Uint8Array>,
  name: StreamName,
  budget: OutputBudget,
  emit: (event: ToolEventBody) => void,
): Pump {
  const reader = stream.getReader();
  let pending: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    if (size === 0) return;
    const joined = pending.length === 1 ? pending[0] : concat(pending, size);
    pending = [];
    size = 0;
    for (const part of budget.take(joined)) emit({ case: name, value: part });
  };
  const done = (async () => {
    try {
      let next = reader.read();
      while (true) {
        const timer = size > 0 ? idle(COALESCE_MS) : undefined;
        const result = timer ? await Promise.race([next, timer.promise]) : await next;
        timer?.cancel();
        if (result === IDLE) {
          flush();
          continue;
        }
        if (result.done) return;
        pending.push(result.value);
        size += result.value.byteLength;
        next = reader.read();
        if (size >= MAX_EVENT_BYTES) flush();
      }
    } catch {
      // A cancelled or broken pipe just ends this stream's output.
    } finally {
      flush();
      reader.releaseLock();
    }
  })();
  return { done, cancel: () => void reader.cancel().catch(() => {}) };
}

function idle(ms: number): { promise: Promise<typeof IDLE>; cancel(): void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<typeof IDLE>((resolve) => id = setTimeout(() => resolve(IDLE), ms));
  return { promise, cancel: () => clearTimeout(id) };
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
