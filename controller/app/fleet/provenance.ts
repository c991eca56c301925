// Who decides whether a host matches a target. Tags are set by operators on the controller;
// labels are whatever the daemon says about itself when it connects, so a compromised or
// misconfigured host can put itself into a labels= target. Every fleet operation says which.
import type { Target } from "./target.ts";

export type TargetSource = "explicit" | "operator-controlled" | "self-reported";

export function targetSource(target: Target): TargetSource {
  switch (target.kind) {
    case "labels":
      return "self-reported";
    case "tags":
      return "operator-controlled";
    default:
      return "explicit";
  }
}

export function targetNote(source: TargetSource): string | undefined {
  if (source !== "self-reported") return undefined;
  return "labels are self-reported by each node (a host can claim any label); " +
    "tags are operator-controlled: prefer --target tags=… to select hosts you trust";
}
