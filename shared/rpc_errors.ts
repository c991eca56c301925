// AegisError <-> ConnectError. The server puts the exact code (and details) in metadata, so the
// client gets back the same typed error it would have got in-process; failures that never reached
// a controller are mapped from the transport's code and cause.
import { Code, ConnectError } from "@connectrpc/connect";
import { AegisError, type ErrorCode, isErrorCode } from "./errors.ts";

const CODE_HEADER = "aegis-error-code";
const HINT_HEADER = "aegis-error-hint";
const DETAIL_PREFIX = "aegis-detail-";

const CONNECT_CODE: Partial<Record<ErrorCode, Code>> = {
  INVALID_ARGUMENT: Code.InvalidArgument,
  ENROLL_TOKEN_MALFORMED: Code.InvalidArgument,
  ENROLL_TOKEN_EXPIRED: Code.Unauthenticated,
  ENROLL_TOKEN_REDEEMED: Code.AlreadyExists,
  ENROLL_TOKEN_WRONG_CONTROLLER: Code.Unauthenticated,
  ENROLL_HOSTNAME_MISMATCH: Code.PermissionDenied,
  ENROLL_NOT_TRUSTED: Code.PermissionDenied,
  CLOCK_SKEW: Code.FailedPrecondition,
  RATE_LIMITED: Code.ResourceExhausted,
  PAYLOAD_TOO_LARGE: Code.ResourceExhausted,
  UNREACHABLE: Code.Unavailable,
  KEY_TOKEN_MISMATCH: Code.Unauthenticated,
  NODE_TOKEN_INVALID: Code.Unauthenticated,
  NODE_TOKEN_EXPIRED: Code.Unauthenticated,
  NODE_REVOKED: Code.PermissionDenied,
  SIGNATURE_INVALID: Code.Unauthenticated,
  REPLAYED: Code.Unauthenticated,
  CHALLENGE_INVALID: Code.FailedPrecondition,
  UNAUTHENTICATED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  NOT_FOUND: Code.NotFound,
  NODE_OFFLINE: Code.Unavailable,
  TIMED_OUT: Code.DeadlineExceeded,
  CONFLICT: Code.AlreadyExists,
  KEY_IN_USE: Code.AlreadyExists,
  OUTPUT_LIMIT: Code.ResourceExhausted,
  ABORTED: Code.Canceled,
};

export function toConnectError(error: AegisError): ConnectError {
  const metadata = new Headers({ [CODE_HEADER]: error.code });
  if (error.hint) metadata.set(HINT_HEADER, encodeURIComponent(error.hint));
  for (const [key, value] of Object.entries(error.details)) {
    metadata.set(DETAIL_PREFIX + key.replaceAll("_", "-"), encodeURIComponent(value));
  }
  return new ConnectError(error.message, CONNECT_CODE[error.code] ?? Code.Internal, metadata);
}

export function fromConnectError(error: unknown, endpoint = "the controller"): AegisError {
  if (error instanceof AegisError) return error;
  const connectError = ConnectError.from(error);
  const code = connectError.metadata.get(CODE_HEADER);
  if (code && isErrorCode(code)) {
    const details: Record<string, string> = {};
    connectError.metadata.forEach((value, key) => {
      if (key.startsWith(DETAIL_PREFIX)) {
        details[key.slice(DETAIL_PREFIX.length).replaceAll("-", "_")] = decodeURIComponent(value);
      }
    });
    const hint = connectError.metadata.get(HINT_HEADER);
    return new AegisError(code, connectError.rawMessage, {
      hint: hint ? decodeURIComponent(hint) : undefined,
      details,
      cause: error,
    });
  }
  const causeText = describeCause(connectError);
  if (/certificate|self.signed|unable to verify|CERT_|tls|ssl/i.test(causeText)) {
    return new AegisError("TLS_FAILED", `TLS with ${endpoint} failed: ${causeText}`, {
      cause: error,
    });
  }
  if (connectError.code === Code.Unavailable || connectError.code === Code.DeadlineExceeded) {
    return new AegisError("UNREACHABLE", `cannot reach ${endpoint}: ${causeText}`, {
      cause: error,
    });
  }
  if (connectError.code === Code.ResourceExhausted) {
    return new AegisError("RATE_LIMITED", connectError.rawMessage, { cause: error });
  }
  // A request the server could not decode: sending it again will not help.
  if (connectError.code === Code.InvalidArgument) {
    return new AegisError(
      "INVALID_ARGUMENT",
      `${endpoint} refused the request: ${connectError.rawMessage}`,
      { cause: error },
    );
  }
  return new AegisError("INTERNAL", `${endpoint} answered: ${connectError.rawMessage}`, {
    cause: error,
  });
}

/** Retrying helps with these; the others need a person. */
export function isRetryable(error: AegisError): boolean {
  return error.code === "UNREACHABLE" || error.code === "RATE_LIMITED" ||
    error.code === "INTERNAL" ||
    error.code === "REPLAYED";
}

function describeCause(error: ConnectError): string {
  const parts = [error.rawMessage];
  let cause: unknown = error.cause;
  for (let depth = 0; cause && depth < 4; depth++) {
    if (cause instanceof Error) {
      const code = (cause as { code?: string }).code;
      parts.push(code ? `${cause.message} (${code})` : cause.message);
      cause = cause.cause;
    } else break;
  }
  return [...new Set(parts.filter(Boolean))].join(": ");
}
