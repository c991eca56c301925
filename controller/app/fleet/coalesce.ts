// Many small database statements become few: items submitted while a batch is in flight wait
// and go together in the next one. The first item goes at once (no timer), so a lone item costs
// what it did before, and a busy fleet operation writes one statement per batch, not per node.

export class Coalescer<I, O> {
  #queue: { item: I; resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  #busy = false;

  /** `run` answers a batch with one output per item, in order. */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 500,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#busy) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.maxBatch);
        try {
          const out = await this.run(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(out[i]));
        } catch (error) {
          // A failed batch fails its own items only; the next batch is tried on its own.
          for (const b of batch) b.reject(error);
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
