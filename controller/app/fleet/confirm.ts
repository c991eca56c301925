// A node's own report is not proof. For operations whose effect the controller records itself,
// success is what the controller's record shows, not what the node says.
import type { NodeOutcome } from "../../../shared/fleet_events.ts";

export interface Outcome {
  status: NodeOutcome;
  detail: string;
  exitCode: number | null;
}

/** keys.rotate is ok only when the fingerprint on record changed during the operation. */
export function confirmRotation(
  reported: Outcome,
  before: string | undefined,
  after: string | undefined,
): Outcome {
  if (reported.status !== "ok") return reported;
  if (after !== undefined && before !== undefined && after !== before) return reported;
  return {
    status: "failed",
    detail: after === undefined
      ? "the host reported a rotation, but the controller no longer has a record of it"
      : `the host reported a rotation, but the controller still holds key ${after} for it`,
    exitCode: reported.exitCode,
  };
}
