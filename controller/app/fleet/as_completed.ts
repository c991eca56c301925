// Results of concurrent work in the order they finish. Each promise is subscribed to exactly
// once, so a wave of n nodes costs O(n), where re-racing the pending set per result cost O(n²).

type Settled<K, T> = { key: K; ok: true; value: T } | { key: K; ok: false; error: unknown };

/** Yields [key, value] as each promise settles; a rejection is thrown when its turn comes. */
export async function* asCompleted<K, T>(
  entries: Iterable<readonly [K, PromiseLike<T>]>,
): AsyncGenerator<[K, T]> {
  const settled: Settled<K, T>[] = [];
  let wake: (() => void) | undefined;
  let pending = 0;
  for (const [key, promise] of entries) {
    pending++;
    promise.then(
      (value) => push({ key, ok: true, value }),
      (error) => push({ key, ok: false, error }),
    );
  }
  function push(item: Settled<K, T>): void {
    settled.push(item);
    wake?.();
    wake = undefined;
  }
  for (let read = 0; read < pending; read++) {
    if (settled.length <= read) await new Promise<void>((resolve) => wake = resolve);
    const item = settled[read];
    // Drop the reference so a long wave does not keep every result alive twice.
    settled[read] = undefined as never;
    if (!item.ok) throw item.error;
    yield [item.key, item.value];
  }
}
