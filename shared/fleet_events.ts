// The progress events of a fleet operation, as the controller streams them (NDJSON) and the CLI
// reads them. Their keys are a stable API, like `--output json`.

export type NodeOutcome = "ok" | "failed" | "timed_out" | "offline" | "skipped";

export type FleetEvent =
  | {
    type: "operation";
    op_id: string;
    operation: string;
    target: string;
    /** Who decided the match: "self-reported" (labels=, the node's word) or the operator's. */
    target_source: "explicit" | "operator-controlled" | "self-reported";
    /** Set when the target trusts what nodes say about themselves. */
    target_note?: string;
    total: number;
    mode: string;
    on_error: string;
  }
  | { type: "wave"; wave: number; size: number; total: number }
  | {
    type: "result";
    node_id: string;
    name: string;
    wave: number;
    status: NodeOutcome;
    detail: string;
    exit_code: number | null;
  }
  | {
    type: "summary";
    op_id: string;
    status: "done" | "stopped";
    counts: Record<NodeOutcome, number>;
    reason?: string;
  }
  | { type: "error"; error: { code: string; message: string; hint?: string } };
