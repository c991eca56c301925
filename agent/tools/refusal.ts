// A refusal is the one way a call ends without running: policy said no, or the call could not be
// started. Its code travels to the controller as text; the AegisError code beside it keeps the
// product-wide meaning (status, hint) for anything that surfaces it to people.
import { create } from "@bufbuild/protobuf";
import { ToolRefusedSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError, type ErrorCode } from "../../shared/errors.ts";
import type { ToolEventBody } from "./types.ts";

const REFUSAL_CODES = {
  INVALID_ARGUMENTS: "INVALID_ARGUMENT",
  UNKNOWN_TOOL: "NOT_FOUND",
  TOOL_NOT_ALLOWED: "FORBIDDEN",
  ENV_NOT_ALLOWED: "FORBIDDEN",
  SANDBOX_UNAVAILABLE: "FORBIDDEN",
  CWD_NOT_ALLOWED: "FORBIDDEN",
  CWD_MISSING: "NOT_FOUND",
  SECRET_MISSING: "NOT_FOUND",
  SECRET_UNAVAILABLE: "INTERNAL",
  COMMAND_NOT_FOUND: "NOT_FOUND",
  SPAWN_FAILED: "INTERNAL",
  BUSY: "RATE_LIMITED",
  DUPLICATE_CALL: "CONFLICT",
  DEADLINE_EXCEEDED: "ABORTED",
  SHUTTING_DOWN: "ABORTED",
  INTERNAL: "INTERNAL",
} as const satisfies Record<string, ErrorCode>;

export type RefusalCode = keyof typeof REFUSAL_CODES;

export class ToolRefusal extends AegisError {
  readonly refusal: RefusalCode;

  constructor(refusal: RefusalCode, message: string, options: { cause?: unknown } = {}) {
    super(REFUSAL_CODES[refusal], message, options);
    this.name = "ToolRefusal";
    this.refusal = refusal;
  }
}

/** Whatever was thrown, as the refusal the controller will see. */
export function toRefusal(error: unknown): ToolRefusal {
  if (error instanceof ToolRefusal) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ToolRefusal("INTERNAL", message, { cause: error });
}

export function refusedEvent(refusal: ToolRefusal): ToolEventBody {
  const value = create(ToolRefusedSchema, { code: refusal.refusal, message: refusal.message });
  return { case: "refused", value };
}
