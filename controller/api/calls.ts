// Tool calls over REST: the response is NDJSON, one event per line as it happens, so an
// operator's `aegis edge exec` prints remote output live. Failures before the call reaches the
// host are ordinary HTTP errors; failures after it started arrive as an `error` line.
import { streamedError } from "./errors.ts";
import type { Context } from "hono";
import { stream } from "hono/streaming";
import { z } from "zod";
import { toBase64 } from "../../shared/crypto/encoding.ts";
import type { CallEvent, CallRequest } from "../app/tool_calls.ts";
import type { EdgeActions } from "../app/edge_actions.ts";
import { scopeOf } from "./executions.ts";
import type { EdgeToolName } from "../app/edge_tools.ts";
import type { ApiEnv } from "./auth.ts";
import { parseBody } from "./validation.ts";

const TimeoutSecs = z.number().int().min(1).max(86400).default(30);

export const ExecBody = z.object({
  argv: z.array(z.string()).min(1).optional(),
  shell: z.string().min(1).optional(),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  stdin: z.string().optional(),
  timeout_secs: TimeoutSecs,
  max_output_bytes: z.number().int().min(1).optional(),
}).strict().refine((b) => Boolean(b.argv) !== Boolean(b.shell), {
  message: "give exactly one of argv or shell",
});

export const CallBody = z.object({
  tool: z.string().min(1).max(128),
  arguments: z.record(z.string(), z.unknown()).default({}),
  timeout_secs: TimeoutSecs,
}).strict();

export async function execRoute(c: Context<ApiEnv>, calls: EdgeActions) {
  const body = await parseBody(c, ExecBody);
  const { timeout_secs, ...args } = body;
  return await streamCall(c, calls, {
    tool: "cmd.run",
    arguments: { ...args, timeout_secs },
    timeoutSecs: timeout_secs,
  });
}

export async function callRoute(c: Context<ApiEnv>, calls: EdgeActions) {
  const body = await parseBody(c, CallBody);
  return await streamCall(c, calls, {
    tool: body.tool,
    arguments: body.arguments,
    timeoutSecs: body.timeout_secs,
  }, "aegis.edge.tool.call");
}

async function streamCall(
  c: Context<ApiEnv>,
  calls: EdgeActions,
  request: CallRequest,
  tool: EdgeToolName = "aegis.edge.command.run",
) {
  const abort = new AbortController();
  const events = calls.runTool(c.get("operator"), c.req.param("nodeId")!, request, {
    ...scopeOf(c),
    tool,
    signal: abort.signal,
  });
  // Pull the first event before answering, so "no such host" or "offline" is a real HTTP error.
  const first = await events.next();
  c.header("content-type", "application/x-ndjson");
  return stream(c, async (out) => {
    out.onAbort(() => abort.abort());
    const write = (event: Record<string, unknown>) => out.write(JSON.stringify(event) + "\n");
    try {
      if (!first.done) await write(wire(first.value));
      for await (const event of events) await write(wire(event));
    } catch (error) {
      await write({ type: "error", error: streamedError(error, c) });
    }
  });
}

function wire(event: CallEvent): Record<string, unknown> {
  if (event.type === "stdout" || event.type === "stderr") {
    return { type: event.type, data: toBase64(event.data) };
  }
  return event;
}
