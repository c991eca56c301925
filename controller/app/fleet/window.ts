// A sliding window over concurrent work: at most `size` items run at once, and the next one
// starts as soon as any running one finishes. Lock-step waves (start n, wait for all n) leave
// the window idle while a wave's slowest node finishes; this keeps it full.

export type WindowEvent<T, R> =
  | { type: "started"; index: number; item: T }
  | { type: "done"; index: number; item: T; result: R };

type Settled<R> = { index: number; ok: true; value: R } | {
  index: number;
  ok: false;
  error: unknown;
};

/**
 * Starts items in order and reports each start and each finish (in the order they finish).
 * `stop()` is asked before every start, after the consumer has seen the latest finish; once it
 * says true nothing more starts, the running items are still reported, and the generator
 * returns how many items were started (the rest were never touched). A rejection of `work` is
 * thrown when its turn comes, as asCompleted did.
 */
export async function* slidingWindow<T, R>(
  items: readonly T[],
  size: number,
  work: (item: T, index: number) => Promise<R>,
  stop: () => boolean = () => false,
): AsyncGenerator<WindowEvent<T, R>, number> {
  const width = Math.max(1, Math.min(size, items.length));
  const settled: Settled<R>[] = [];
  let wake: (() => void) | undefined;
  let next = 0;
  let running = 0;
  let read = 0;
  const push = (item: Settled<R>) => {
    settled.push(item);
    wake?.();
    wake = undefined;
  };
  while (true) {
    while (running < width && next < items.length && !stop()) {
      const index = next++;
      running++;
      // Each promise is subscribed to once: n items cost O(n), however wide the window.
      work(items[index], index).then(
        (value) => push({ index, ok: true, value }),
        (error) => push({ index, ok: false, error }),
      );
      yield { type: "started", index, item: items[index] };
    }
    if (running === 0) return next;
    if (settled.length <= read) await new Promise<void>((resolve) => wake = resolve);
    const done = settled[read];
    // Drop the reference so a long operation does not keep every result alive twice.
    settled[read++] = undefined as never;
    running--;
    if (!done.ok) throw done.error;
    yield { type: "done", index: done.index, item: items[done.index], result: done.value };
  }
}
