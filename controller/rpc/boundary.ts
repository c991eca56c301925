// The one place RPC handlers turn thrown errors into wire errors.
import { ConnectError } from "@connectrpc/connect";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import { toConnectError } from "../../shared/rpc_errors.ts";

export type Log = (message: string) => void;

export function wireError(error: unknown, log: Log): ConnectError {
  if (error instanceof ConnectError) return error;
  const aegis = toAegisError(error);
  if (!(error instanceof AegisError)) log(`internal error: ${(error as Error)?.stack ?? error}`);
  return toConnectError(aegis);
}

/** Wraps a unary handler so every failure leaves as a typed ConnectError. */
export function guarded<A extends unknown[], R>(log: Log, fn: (...args: A) => Promise<R>) {
  return async (...args: A): Promise<R> => {
    try {
      return await fn(...args);
    } catch (error) {
      throw wireError(error, log);
    }
  };
}
