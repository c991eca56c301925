// Group commit for small writes on hot paths (call records, heartbeats): rows queue, and one
// flush writes every row queued so far with one statement per batch, not one per row. A flush
// starts as soon as the writer is idle and the current turn of the event loop is over (no timer,
// so a lone write waits no longer than its own statement); rows that arrive while a flush runs go
// in the next one. Flushes run one at a time, in order, so rows reach the database in the order
// they were written. A caller that needs its row durable awaits write(); one that does not may
// drop the promise (errors are reported to it all the same, so nothing is silently lost when it
// does await).
import { AsyncLocalStorage } from "node:async_hooks";

export interface BatchWriterOptions {
  /** The most rows one flush takes (the rest wait for the next): bounds each statement's size. */
  maxBatch?: number;
}

interface Queued<T> {
  row: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const DEFAULT_MAX_BATCH = 500;

/**
 * Whether the database refused the batch for what one of its rows holds (SQLSTATE class 22, data
 * exception; 23, integrity constraint; 54, program limit) rather than for being unreachable or
 * overloaded, when writing each row alone would only fail the same way more slowly.
 */
function isRowError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && /^(22|23|54)/.test(code);
}

export class BatchWriter<T> {
  #queue: Queued<T>[] = [];
  #flushing?: Promise<void>;
  readonly #maxBatch: number;
  /**
   * The async context the writer was made in. A flush runs there, not in the context of whichever
   * write started it: that write may come from inside a db.transaction(), and the store refuses
   * the outer db there (tx_guard.ts), which would fail every row of the batch.
   */
  readonly #context = AsyncLocalStorage.snapshot();

  /** `flush` writes one batch (in the order given) and resolves once it is committed. */
  constructor(
    private readonly flush: (rows: T[]) => Promise<void>,
    options: BatchWriterOptions = {},
  ) {
    this.#maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /** Queues a row; resolves when the flush holding it committed, rejects when it failed. */
  write(row: T): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.#queue.push({ row, resolve, reject });
    });
    this.#start();
    return done;
  }

  /** Rows queued and not yet handed to a flush. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Resolves once every row written so far was flushed (or failed). */
  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  #start(): void {
    if (this.#flushing) return;
    // Started once this turn of the event loop is over (setImmediate, not a timer): rows written
    // in the same turn share the flush, and whatever I/O the turn queued goes out first. PGlite
    // runs each statement on this thread, blocking it; started in a microtask, a call's start-row
    // INSERT ran before the call itself was written to its node's stream, and held it back for
    // the whole statement.
    const run = () => new Promise((go) => setImmediate(go)).then(() => this.#run());
    this.#flushing = this.#context(run).finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#start();
    });
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        await this.flush(batch.map((q) => q.row));
        for (const q of batch) q.resolve();
      } catch (error) {
        if (batch.length > 1 && isRowError(error)) {
          // One row the database refuses (bad data, a broken constraint) must not take the rest
          // of the batch with it: each row is written alone, so only that one fails.
          for (const q of batch) {
            try {
              await this.flush([q.row]);
              q.resolve();
            } catch (own) {
              q.reject(own);
            }
          }
        } else {
          for (const q of batch) q.reject(error);
        }
      }
    }
  }
}
