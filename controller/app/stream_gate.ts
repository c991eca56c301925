// Counts long-lived streams that have not earned trust (not yet authenticated, or anonymous by
// design), per client bucket and in all, so no one address and no crowd of them can hold more
// than a bounded share of the process.
import { AegisError } from "../../shared/errors.ts";

export class StreamGate {
  readonly #perKey = new Map<string, number>();
  #total = 0;

  constructor(
    readonly what: string,
    readonly perKeyMax: number,
    readonly totalMax: number,
  ) {}

  get size(): number {
    return this.#total;
  }

  /** Admits one stream for `key` or throws RATE_LIMITED; the result releases it, once. */
  admit(key: string): () => void {
    const held = this.#perKey.get(key) ?? 0;
    if (held >= this.perKeyMax) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many ${this.what} from ${key} (at most ${this.perKeyMax}); retry later`,
      );
    }
    if (this.#total >= this.totalMax) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many ${this.what} on this controller (at most ${this.totalMax}); retry later`,
      );
    }
    this.#perKey.set(key, held + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#perKey.get(key) ?? 1) - 1;
      if (left > 0) this.#perKey.set(key, left);
      else this.#perKey.delete(key);
    };
  }
}
