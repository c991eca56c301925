// How the PostgreSQL adapter names where it tried to go and when it gives up on reaching it.
// An outage must surface as UNREACHABLE (exit 69 / HTTP 503, retryable) while SQL errors keep
// their SQLSTATE for callers, e.g. 23505 for a duplicate key.
import { AegisError } from "../../shared/errors.ts";

/** host:port/db, never the credentials: the DSN may carry a password. */
export function describeTarget(
  options: { host: string[]; port: number[]; database: string },
): string {
  const hosts = options.host.map((h, i) => `${h}:${options.port[i] ?? options.port[0]}`);
  return `${hosts.join(",")}/${options.database}`;
}

export function unreachable(target: string, error: unknown): AegisError {
  const reason = error instanceof Error ? error.message : String(error);
  return new AegisError("UNREACHABLE", `cannot reach PostgreSQL at ${target}: ${reason}`, {
    cause: error,
    details: { target },
  });
}

// Socket-level failures, SQLSTATE class 08 and server shutdown. CONNECTION_ENDED and _DESTROYED
// are absent on purpose: they mean we closed the pool ourselves, which is a bug, not an outage.
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "57P01",
  "57P02",
  "57P03",
]);

export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (CONNECTION_CODES.has(code) || code.startsWith("08"));
}

/** Turns outages into UNREACHABLE and hands every other error back as the same object. */
export function outageAs(target: string): (error: unknown) => unknown {
  return (error) => isConnectionError(error) ? unreachable(target, error) : error;
}
