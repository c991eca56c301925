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

/** Reads to the end even past the budget, so a chatty child never blocks on a full pipe. */
export function pump(
  stream: ReadableStream<Uint8Array>,
  name: StreamName,
  budget: OutputBudget,
  emit: (event: ToolEventBody) => void,
): Pump {
  const reader = stream.getReader();
  const done = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        for (const part of budget.take(value)) emit({ case: name, value: part });
      }
    } catch {
      // A cancelled or broken pipe just ends this stream's output.
    } finally {
      reader.releaseLock();
    }
  })();
  return { done, cancel: () => void reader.cancel().catch(() => {}) };
}
