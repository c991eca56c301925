// The echo tool: a full round trip through policy and events with no process behind it, so the
// cost of the path itself can be measured.
import { create } from "@bufbuild/protobuf";
import { type ToolExit, ToolExitSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { EdgeConfig } from "../../shared/config/edge_config.ts";
import { EchoArgsSchema, parseArguments } from "./arguments.ts";
import { checkEchoAllowed } from "./policy.ts";

export function runEcho(config: EdgeConfig, argumentsJson: string): ToolExit {
  const started = performance.now();
  checkEchoAllowed(config);
  parseArguments("echo", argumentsJson, EchoArgsSchema);
  return create(ToolExitSchema, {
    exitCode: 0,
    resultJson: argumentsJson.trim() === "" ? "{}" : argumentsJson,
    durationMs: BigInt(Math.round(performance.now() - started)),
  });
}
