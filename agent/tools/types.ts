// The tool runtime's boundary: what the daemon hands in (config, secrets, a logger) and what comes
// out (events per call). Nothing here knows about streams, envelopes or the controller.
import type { ToolEvent } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { EdgeConfig } from "../../shared/config/edge_config.ts";

export type ToolEventBody = ToolEvent["event"];
export type Emit = (callId: string, event: ToolEventBody) => void;

export interface ToolContext {
  /** Read on every call, so a reloaded config applies to the next call without a restart. */
  config: EdgeConfig;
  /**
   * The daemon's state directory (node.key, node.token, secrets/): never a call's cwd, hidden
   * from calls where a sandbox is available. Defaults to ~/.aegis/edge of $HOME, as the daemon's.
   */
  stateDir?: string;
  /** For env values "secret://NAME"; undefined when the host has no such secret. */
  resolveSecret(name: string): Promise<string | undefined>;
  log(message: string): void;
}

export interface ToolCallRequest {
  callId: string;
  tool: string;
  argumentsJson: string;
  deadline?: Date;
}
