// An unbounded async queue: producers push, one consumer iterates until close() or fail().

export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiters: Array<(result: IteratorResult<T>) => void> = [];
  #failers: Array<(error: unknown) => void> = [];
  #closed = false;
  #error: unknown = undefined;

  push(item: T): boolean {
    if (this.#closed) return false;
    const waiter = this.#waiters.shift();
    this.#failers.shift();
    if (waiter) waiter({ value: item, done: false });
    else this.#items.push(item);
    return true;
  }

  /** Ends the iteration after the queued items are taken. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true });
    this.#failers.length = 0;
  }

  /** Ends the iteration with an error once the queued items are taken. */
  fail(error: unknown): void {
    if (this.#closed) return;
    this.#error = error ?? new Error("queue failed");
    this.#closed = true;
    for (const fail of this.#failers.splice(0)) fail(this.#error);
    this.#waiters.length = 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get size(): number {
    return this.#items.length;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) {
      return Promise.resolve({ value: this.#items.shift()!, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiters.push(resolve);
      this.#failers.push(reject);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    // Connect's client calls throw() on request iterators when a call fails.
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
      throw: (error?: unknown) => {
        this.fail(error);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
