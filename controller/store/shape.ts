// The small normalisations both adapters apply on the way in and out, so that neither driver's
// habits leak above the port (see the rules in db.ts).
import { AegisError } from "../../shared/errors.ts";

/**
 * Copies driver rows into plain objects in a plain array. Both drivers build rows with a null
 * prototype and postgres.js returns an Array subclass; assert.deepStrictEqual (and anything else
 * that compares prototypes) would treat those as different from literals.
 */
export function plainRows<T>(rows: ArrayLike<unknown>): T[] {
  const out = new Array<T>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = { ...(rows[i] as object) } as T;
  return out;
}

/** Refuses undefined parameters, which postgres.js rejects and PGlite turns into NULL. */
export function checkParams(params: readonly unknown[] | undefined): unknown[] {
  if (!params) return [];
  for (let i = 0; i < params.length; i++) {
    if (params[i] === undefined) {
      throw new AegisError("INTERNAL", `query parameter $${i + 1} is undefined (use null)`);
    }
  }
  return [...params];
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/** postgres.js quotes LISTEN channels and PGlite does its own folding; plain names mean the same. */
export function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) {
    throw new AegisError(
      "INTERNAL",
      `notification channel ${JSON.stringify(channel)} must match ${CHANNEL.source}`,
    );
  }
}

/**
 * Shields the driver from a throwing listener: postgres.js calls it inside its socket handler
 * and PGlite inside the query that delivered it, so a throw would break an unrelated query or
 * connection. The error is still reported, not swallowed.
 */
export function safeListener(
  channel: string,
  onPayload: (payload: string) => void,
): (payload: string) => void {
  return (payload) => {
    try {
      onPayload(payload);
    } catch (error) {
      console.error(`listener on channel ${channel} threw:`, error);
    }
  };
}
