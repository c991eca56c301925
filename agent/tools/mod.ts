// The tool runtime's public face; the daemon imports from here only.
export { toolCallRequest, ToolRunner } from "./runner.ts";
export type { Emit, ToolCallRequest, ToolContext, ToolEventBody } from "./types.ts";
export type { RefusalCode } from "./refusal.ts";
