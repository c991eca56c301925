// An async queue bounded in bytes, not items: a producer that finds it full waits for the consumer
// (backpressure). A producer still waiting after `stallMs` gets `false` and the queue fails with
// `onStall()`'s error, so memory never grows past the bound while a consumer lags.

export interface BoundedQueueOptions<T> {
  /** Bytes the queued items may hold; one item larger than this is let in when the queue is empty. */
  maxBytes: number;
  /** How long one put() may wait for room before the queue gives up on its consumer. */
  stallMs: number;
  sizeOf(item: T): number;
  /** The error the consumer sees (after the queued items) when a put() stalled. */
  onStall(): Error;
}

interface Blocked<T> {
  item: T;
  resolve(accepted: boolean): void;
  timer: ReturnType<typeof setTimeout>;
}

export class BoundedQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #bytes = 0;
  #blocked: Blocked<T>[] = [];
  #waiter?: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void };
  #closed = false;
  #error: unknown = undefined;

  constructor(private readonly options: BoundedQueueOptions<T>) {}

  /** Bytes held by queued items (not counting producers still waiting). */
  get bytes(): number {
    return this.#bytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves true once the item is queued, false if the queue ended or the put stalled. */
  put(item: T): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    // Items keep their order: nothing overtakes a producer that is already waiting.
    if (this.#blocked.length === 0 && this.#fits(item)) {
      this.#enqueue(item);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.fail(this.options.onStall()), this.options.stallMs);
      this.#blocked.push({ item, resolve, timer });
    });
  }

  /** Ends the iteration after the queued items are taken; waiting producers get false. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    this.#waiter?.resolve({ value: undefined, done: true });
    this.#waiter = undefined;
  }

  /** Ends the iteration with `error` once the queued items are taken. */
  fail(error: unknown): void {
    if (this.#closed) return;
    this.#error = error ?? new Error("queue failed");
    this.#closed = true;
    this.#release();
    this.#waiter?.reject(this.#error);
    this.#waiter = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.#take();
    if (item) return Promise.resolve(item);
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) return Promise.reject(new Error("BoundedQueue has one consumer"));
    return new Promise((resolve, reject) => this.#waiter = { resolve, reject });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        this.#items = [];
        this.#bytes = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #fits(item: T): boolean {
    return this.#items.length === 0 ||
      this.#bytes + this.options.sizeOf(item) <= this.options.maxBytes;
  }

  #enqueue(item: T): void {
    if (this.#waiter) {
      this.#waiter.resolve({ value: item, done: false });
      this.#waiter = undefined;
      return;
    }
    this.#items.push(item);
    this.#bytes += this.options.sizeOf(item);
  }

  #take(): IteratorResult<T> | undefined {
    if (this.#items.length === 0) return undefined;
    const value = this.#items.shift()!;
    this.#bytes -= this.options.sizeOf(value);
    // Room was made: let waiting producers in, in order.
    while (this.#blocked.length > 0 && this.#fits(this.#blocked[0].item)) {
      const blocked = this.#blocked.shift()!;
      clearTimeout(blocked.timer);
      this.#enqueue(blocked.item);
      blocked.resolve(true);
    }
    return { value, done: false };
  }

  #release(): void {
    for (const blocked of this.#blocked.splice(0)) {
      clearTimeout(blocked.timer);
      blocked.resolve(false);
    }
  }
}

export interface CappedQueueOptions<T> {
  /** Items waiting for the consumer. */
  maxItems: number;
  /** Bytes the waiting items may hold. */
  maxBytes: number;
  sizeOf(item: T): number;
  /** The error the queue fails with when a push would pass a bound. */
  onOverflow(): Error;
}

/**
 * An async queue for a producer that cannot wait (messages the controller sends down a node's
 * stream): push never blocks, and a push past either bound drops everything queued and fails
 * the queue with `onOverflow()`'s error, at once. A consumer that stops reading therefore costs
 * at most the bounds, and learns why its stream ended.
 */
export class CappedQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #bytes = 0;
  #waiter?: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void };
  #closed = false;
  #error: unknown = undefined;

  constructor(private readonly options: CappedQueueOptions<T>) {}

  /** Whether `item` could be pushed now without overflowing the queue. */
  fits(item: T): boolean {
    if (this.#closed) return false;
    if (this.#waiter) return true;
    return this.#items.length + 1 <= this.options.maxItems &&
      this.#bytes + this.options.sizeOf(item) <= this.options.maxBytes;
  }

  /** False when the queue has ended, or when this push overflowed it (it is failed then). */
  push(item: T): boolean {
    if (this.#closed) return false;
    if (this.#waiter) {
      this.#waiter.resolve({ value: item, done: false });
      this.#waiter = undefined;
      return true;
    }
    const size = this.options.sizeOf(item);
    if (
      this.#items.length + 1 > this.options.maxItems || this.#bytes + size > this.options.maxBytes
    ) {
      this.#items = [];
      this.#bytes = 0;
      this.fail(this.options.onOverflow());
      return false;
    }
    this.#items.push(item);
    this.#bytes += size;
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter?.resolve({ value: undefined, done: true });
    this.#waiter = undefined;
  }

  /** Ends the iteration with `error` once the queued items are taken. */
  fail(error: unknown): void {
    if (this.#closed) return;
    this.#error = error ?? new Error("queue failed");
    this.#closed = true;
    this.#waiter?.reject(this.#error);
    this.#waiter = undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Items waiting for the consumer. */
  get size(): number {
    return this.#items.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) {
      const value = this.#items.shift()!;
      this.#bytes -= this.options.sizeOf(value);
      return Promise.resolve({ value, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) return Promise.reject(new Error("CappedQueue has one consumer"));
    return new Promise((resolve, reject) => this.#waiter = { resolve, reject });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        this.#items = [];
        this.#bytes = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      throw: (error?: unknown) => {
        this.fail(error);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
