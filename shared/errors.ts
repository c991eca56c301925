// One error type for the whole product. Each code has a fixed exit status (CLI), HTTP status
// (REST) and a short default hint, so every transport says the same thing about the same failure.

export const ERROR_CODES = {
  // Bad input on the command line or in a request.
  INVALID_ARGUMENT: { exit: 2, http: 400, hint: "" },
  PAYLOAD_TOO_LARGE: { exit: 2, http: 413, hint: "" },
  CONFIG_INVALID: { exit: 78, http: 500, hint: "Fix the named key in the config file." },
  // Enrollment tokens.
  ENROLL_TOKEN_MALFORMED: {
    exit: 65,
    http: 400,
    hint: "Copy the whole token again: it is the long text after `aegis edge enroll`.",
  },
  ENROLL_TOKEN_EXPIRED: {
    exit: 65,
    http: 401,
    hint: "Issue a fresh enrollment token (they last 15 minutes by default).",
  },
  ENROLL_TOKEN_REDEEMED: {
    exit: 65,
    http: 409,
    hint: "Tokens are one-time use. Issue a fresh enrollment token.",
  },
  ENROLL_TOKEN_WRONG_CONTROLLER: {
    exit: 65,
    http: 401,
    hint:
      "This token was issued by a different controller. Issue one from the controller you enroll with.",
  },
  /** A token bound to a hostname pattern, redeemed from a host whose name does not match it. */
  ENROLL_HOSTNAME_MISMATCH: {
    exit: 65,
    http: 403,
    hint:
      "The token is still valid: enroll from a host the token's pattern names, or issue a token without --hostname-pattern.",
  },
  /** Token-free enrollment refused; the message says which check failed, never the rules. */
  ENROLL_NOT_TRUSTED: {
    exit: 65,
    http: 403,
    hint:
      "Ask an operator for an enrollment token, or for a trusted-enrollment rule covering this host.",
  },
  CLOCK_SKEW: {
    exit: 65,
    http: 401,
    hint: "Fix the host clock (chronyd, systemd-timesyncd, Windows Time) and retry.",
  },
  RATE_LIMITED: { exit: 75, http: 429, hint: "Wait a minute and retry." },
  UNREACHABLE: {
    exit: 69,
    http: 503,
    hint: "Check that the endpoint is right and that outbound traffic to it is allowed.",
  },
  TLS_FAILED: {
    exit: 69,
    http: 503,
    hint: "Pass the controller's CA with --ca-file (or DENO_CERT); never disable verification.",
  },
  // Node identity.
  KEY_TOKEN_MISMATCH: {
    exit: 65,
    http: 401,
    hint:
      "Delete ~/.aegis/edge/node.key* and ~/.aegis/edge/node.token, then run `aegis edge enroll <fresh-token>`.",
  },
  NODE_TOKEN_INVALID: {
    exit: 77,
    http: 401,
    hint: "Re-enroll this host with a fresh token: `aegis edge enroll <token> --force`.",
  },
  NODE_TOKEN_EXPIRED: {
    exit: 77,
    http: 401,
    hint: "Run `aegis edge token refresh`, or re-enroll with a fresh token.",
  },
  NODE_REVOKED: {
    exit: 77,
    http: 403,
    hint:
      "This host was revoked. Re-enroll it with a fresh token: `aegis edge enroll <token> --force`.",
  },
  NODE_OFFLINE: {
    exit: 69,
    http: 409,
    hint: "The host is not connected; check `aegis edge hosts show <node-id>` and its daemon.",
  },
  TIMED_OUT: { exit: 124, http: 504, hint: "" },
  NOT_ENROLLED: {
    exit: 78,
    http: 404,
    hint: "Enroll first: `aegis edge enroll <token>`.",
  },
  SIGNATURE_INVALID: { exit: 77, http: 401, hint: "" },
  REPLAYED: { exit: 77, http: 401, hint: "" },
  CHALLENGE_INVALID: { exit: 65, http: 400, hint: "Run the enrollment again." },
  // Releases (issue 11): signed builds, their keys, and what checks them.
  /** A release signature, manifest or download that does not check out: nothing is installed. */
  RELEASE_SIGNATURE_INVALID: {
    exit: 77,
    http: 422,
    hint: "Do not install this download; fetch the release again from a controller you trust.",
  },
  /** A release key file that cannot be used (corrupt, encrypted, not minisign's format). */
  RELEASE_KEY_INVALID: {
    exit: 78,
    http: 500,
    hint: "Make a key with `deno task release:keygen --out DIR` or `minisign -G -W`.",
  },
  /** This binary was built without a release key; self-update refuses (fail-closed). */
  RELEASE_KEY_MISSING: {
    exit: 78,
    http: 500,
    hint:
      "Install a signed release (install.sh or install.ps1) to get updates; rebuild with --key.",
  },
  /** A release build could not find what it needs (key, runtime archive) or could not finish. */
  RELEASE_BUILD_FAILED: { exit: 1, http: 500, hint: "" },
  /** Self-update could not go ahead (the new binary fails its pre-flight, nothing restarts the
   * daemon, another update is pending); nothing was switched. */
  UPDATE_FAILED: { exit: 1, http: 500, hint: "" },
  /** The new version did not reach Connected by the deadline: the previous one runs again. */
  UPDATE_ROLLED_BACK: {
    exit: 75,
    http: 500,
    hint:
      "The previous version runs again. The daemon's log (journalctl --user -u aegis-edge, or ~/.aegis/edge/logs) says why the new one did not connect.",
  },
  // Operators.
  UNAUTHENTICATED: {
    exit: 77,
    http: 401,
    hint: "Pass an operator token (AEGIS_TOKEN or --token).",
  },
  FORBIDDEN: { exit: 77, http: 403, hint: "" },
  /** A child execution asked for a broader security context than its parent's. */
  CONTEXT_CEILING: {
    exit: 77,
    http: 403,
    hint: "Ask for the parent's context or a narrower one.",
  },
  /** A second top-level task in a conversation that has one running. */
  EXECUTION_ACTIVE: {
    exit: 1,
    http: 409,
    hint:
      "Finish or cancel the running task first (`aegis executions cancel <id>`), or run this as its child.",
  },
  /** The security context's executions per minute or per day, or its concurrency, is used up. */
  QUOTA_EXCEEDED: {
    exit: 75,
    http: 429,
    hint: "Retry after the time given (details.retry_after_secs).",
  },
  NOT_FOUND: { exit: 1, http: 404, hint: "" },
  CONFLICT: { exit: 1, http: 409, hint: "" },
  /** A rotation onto a key another live node holds: nothing changed, that key is unusable here. */
  KEY_IN_USE: {
    exit: 1,
    http: 409,
    hint: "Run `aegis edge keys rotate` again: it makes a fresh key.",
  },
  // Local state and plans.
  ABORTED: { exit: 1, http: 400, hint: "" },
  OUTPUT_LIMIT: {
    exit: 1,
    http: 413,
    hint: "Ask for less output (max_output_bytes) or read it as fast as the host writes it.",
  },
  WOULD_PROMPT: {
    exit: 64,
    http: 400,
    hint: "Pass --force (overwrite) or --keep-existing (reuse), or run interactively.",
  },
  UNSAFE_REUSE: { exit: 65, http: 400, hint: "" },
  /** An audit log export whose hash chain does not verify: records were edited or deleted. */
  AUDIT_CHAIN_BROKEN: {
    exit: 65,
    http: 409,
    hint:
      "Audit records were changed or removed in the controller's database: find who can write to it, and compare with an earlier export.",
  },
  INTERNAL: { exit: 70, http: 500, hint: "" },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AegisErrorOptions {
  hint?: string;
  details?: Record<string, string>;
  cause?: unknown;
}

export class AegisError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: AegisErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "AegisError";
    this.code = code;
    this.hint = options.hint ?? ERROR_CODES[code].hint;
    this.details = options.details ?? {};
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(Object.keys(this.details).length ? { details: this.details } : {}),
    };
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** Normalises anything thrown into an AegisError, once, at a boundary. */
export function toAegisError(error: unknown): AegisError {
  if (error instanceof AegisError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new AegisError("INTERNAL", message, { cause: error });
}
