// Catches the classic transaction bug: calling the outer `db` from inside `db.transaction(fn)`.
// On PGlite (one connection, one transaction at a time) that call waits for the transaction that
// is waiting for it: a silent hang. On PostgreSQL it runs on another pooled connection, outside
// the transaction: a silent loss of atomicity. Throwing makes both loud and identical.
import { AsyncLocalStorage } from "node:async_hooks";
import { AegisError } from "../../shared/errors.ts";

export class TxGuard {
  // One storage per Db, so using a different Db inside a transaction stays legal.
  readonly #inside = new AsyncLocalStorage<true>();

  /** Runs fn, and everything it awaits, as "inside a transaction". */
  inside<T>(fn: () => Promise<T>): Promise<T> {
    return this.#inside.run(true, fn);
  }

  /** Runs fn as if outside: for listener callbacks, which the driver fires from wherever it is. */
  outside<T>(fn: () => T): T {
    return this.#inside.exit(fn);
  }

  assertOutside(method: string): void {
    if (this.#inside.getStore()) {
      throw new AegisError(
        "INTERNAL",
        `db.${method}() was called inside db.transaction(); use the tx passed to the callback`,
      );
    }
  }
}
