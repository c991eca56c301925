// The edge tools as MCP tools. A server is built per request for one caller: it registers only
// the tools the caller's security context allows (so tools/list shows exactly those, and a
// guessed name is an unknown tool), and every handler goes through the same services REST does
// (EdgeActions, ExecutionService), which check the context again for the execution the call
// runs under. Errors come back as tool errors carrying the AegisError code, message, hint and
// details (retry_after_secs for a limit).
import { type CallToolResult, McpServer, type ServerContext } from "@modelcontextprotocol/server";
import { z } from "zod";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import { toBase64 } from "../../shared/crypto/encoding.ts";
import { EDGE_TOOLS, type EdgeToolName } from "../app/edge_tools.ts";
import type { EdgeActions, ExecutionScope } from "../app/edge_actions.ts";
import type { ExecutionService } from "../app/executions.ts";
import type { DaemonRepository } from "../app/daemons.ts";
import type { FleetDispatcher, OperationName } from "../app/fleet/dispatcher.ts";
import { parseErrorPolicy, parseMode } from "../app/fleet/policy.ts";
import type { Principal } from "../app/identity.ts";
import { resolveTenant, tenantsOf } from "../app/operators.ts";
import type { SecurityContexts } from "../app/security_contexts.ts";
import type { ToolCallService } from "../app/tool_calls.ts";
import type { Clock } from "../app/clock.ts";
import { hostView } from "../api/host_view.ts";

export interface McpToolDeps {
  actions: EdgeActions;
  executions: ExecutionService;
  daemons: DaemonRepository;
  calls: ToolCallService;
  fleet: FleetDispatcher;
  contexts: SecurityContexts;
  clock: Clock;
  heartbeatIntervalSecs: number;
  version: string;
  log: (message: string) => void;
}

/** What a tool handler knows of its request besides its arguments. */
export interface McpCaller {
  principal: Principal;
  /** The conversation (X-Aegis-Session-Id, or a 2025 client's Mcp-Session-Id). */
  sessionId?: string;
  /** Aborted when the caller cancels the call (a closed response, notifications/cancelled). */
  cancel?: AbortSignal;
  /** Called once the tool call ended. */
  done?: () => void;
}

/** The most output a command's result carries inline (the rest was streamed as progress). */
const MAX_RESULT_OUTPUT = 1024 * 1024;
/** The most text one progress notification carries. */
const MAX_PROGRESS_TEXT = 16 * 1024;
const MAX_HOSTS_LISTED = 500;

const ExecutionArgs = {
  execution_id: z.string().max(64).optional().describe(
    "Run under this execution (one of yours, still running); default: the session's task",
  ),
  context: z.string().max(64).optional().describe(
    "Run under a narrower security context than the parent's",
  ),
};

const CommandArgs = z.object({
  node_id: z.string().min(1).max(128),
  argv: z.array(z.string().max(32_768)).min(1).max(1_000).optional(),
  shell: z.string().min(1).max(65_536).optional(),
  cwd: z.string().max(4_096).optional(),
  env: z.record(z.string().max(256), z.string().max(32_768)).optional(),
  stdin: z.string().max(1_048_576).optional(),
  timeout_secs: z.number().int().min(1).max(86_400).optional(),
  max_output_bytes: z.number().int().min(1).max(4 * 1024 * 1024).optional(),
  ...ExecutionArgs,
}).strict();

const FleetArgs = {
  target: z.string().min(1).max(4_096).describe(
    "Which hosts: all, name=web-*, tag=env:prod, label=k=v, id=… (as `aegis edge fleet`)",
  ),
  mode: z.string().max(32).default("rolling=5"),
  on_error: z.string().max(32).default("continue"),
  deadline_secs: z.number().int().min(1).max(86_400).default(60),
  tenant_id: z.string().max(128).optional(),
  ...ExecutionArgs,
};

/** Builds the MCP server one request of `caller` is served by. */
export function buildServer(deps: McpToolDeps, caller: McpCaller): McpServer {
  const server = new McpServer({ name: "aegis-controller", version: deps.version });
  const allowed = deps.contexts.resolve(caller.principal).tools;
  const register = <S extends z.ZodType>(
    name: EdgeToolName,
    description: string,
    inputSchema: S,
    run: (args: z.infer<S>, ctx: ServerContext) => Promise<unknown>,
  ) => {
    if (!allowed.has(name)) return;
    const traits = EDGE_TOOLS[name];
    const handler = async (args: z.infer<S>, ctx: ServerContext): Promise<CallToolResult> => {
      try {
        return ok(await run(args, ctx));
      } catch (error) {
        return failed(error, deps.log);
      } finally {
        caller.done?.();
      }
    };
    // The SDK's overloads cannot follow a schema passed through a generic; the schema and the
    // handler's argument type come from the same `inputSchema` here.
    server.registerTool(
      name,
      {
        description,
        inputSchema,
        annotations: {
          readOnlyHint: !traits.writes,
          destructiveHint: traits.operatorOnly && traits.writes,
          openWorldHint: false,
        },
      } as never,
      handler as never,
    );
  };
  const { principal } = caller;
  const scopeOf = (args: { execution_id?: string; context?: string }): ExecutionScope => ({
    ...(args.execution_id ? { parentId: args.execution_id } : {}),
    ...(caller.sessionId ? { sessionId: caller.sessionId } : {}),
    ...(args.context ? { context: args.context } : {}),
  });

  register(
    "aegis.edge.hosts.list",
    "List the edge hosts of a tenant with their status.",
    z.object({
      tenant_id: z.string().max(128).optional(),
      status: z.enum(["Connected", "Disconnected", "Revoked", "Pending"]).optional(),
    }).strict(),
    async (args) => {
      const tenant = resolveTenant(principal, args.tenant_id);
      const hosts = (await deps.daemons.list(tenant)).map((h) => hostView(h, deps))
        .filter((h) => !args.status || h.status === args.status);
      return {
        tenant_id: tenant,
        total: hosts.length,
        hosts: hosts.slice(0, MAX_HOSTS_LISTED),
        ...(hosts.length > MAX_HOSTS_LISTED ? { truncated: true } : {}),
      };
    },
  );

  register(
    "aegis.edge.hosts.describe",
    "Describe one edge host: status, facts, credentials and its last commands.",
    z.object({ node_id: z.string().min(1).max(128) }).strict(),
    async (args) => {
      const host = await deps.daemons.require(args.node_id, tenantsOf(principal));
      return { ...hostView(host, deps), history: await deps.calls.history(host.node_id, 10) };
    },
  );

  register(
    "aegis.edge.command.run",
    "Run a command on an edge host under the host's own policy. Output streams as progress " +
      "notifications; cancelling the request kills the remote process tree.",
    CommandArgs,
    async (args, ctx) => {
      if (Boolean(args.argv) === Boolean(args.shell)) {
        throw new AegisError("INVALID_ARGUMENT", "give exactly one of argv or shell");
      }
      const { node_id, execution_id, context, timeout_secs, ...rest } = args;
      const timeoutSecs = timeout_secs ?? 30;
      return await runCommand(deps, ctx, caller, node_id, {
        tool: "cmd.run",
        arguments: { ...rest, timeout_secs: timeoutSecs },
        timeoutSecs,
      }, scopeOf({ execution_id, context }));
    },
  );

  register(
    "aegis.edge.tool.call",
    "Call a tool an edge host offers (echo, cmd.run, ...) with JSON arguments; the host's own " +
      "policy decides what runs. Output streams as progress notifications.",
    z.object({
      node_id: z.string().min(1).max(128),
      tool: z.string().min(1).max(128),
      arguments: z.record(z.string().max(256), z.unknown()).default({}),
      timeout_secs: z.number().int().min(1).max(86_400).optional(),
      ...ExecutionArgs,
    }).strict(),
    async (args, ctx) => {
      const timeoutSecs = args.timeout_secs ?? 30;
      return await runCommand(
        deps,
        ctx,
        caller,
        args.node_id,
        {
          tool: args.tool,
          arguments: args.arguments,
          timeoutSecs,
        },
        scopeOf(args),
        "aegis.edge.tool.call",
      );
    },
  );

  register(
    "aegis.edge.enrollment_token.issue",
    "Issue a one-time enrollment token (and the commands that use it) for a new edge host.",
    z.object({
      name: z.string().max(128).optional(),
      tenant_id: z.string().max(128).optional(),
      ttl_secs: z.number().int().min(30).max(7 * 86_400).optional(),
      hostname_pattern: z.string().min(1).max(253).optional(),
      ...ExecutionArgs,
    }).strict(),
    async ({ execution_id, context, ...request }) =>
      await deps.actions.issueEnrollmentToken(
        principal,
        request,
        scopeOf({ execution_id, context }),
      ),
  );

  register(
    "aegis.edge.hosts.revoke",
    "Revoke an edge host: its credentials stop working at once and its stream is closed.",
    z.object({ node_id: z.string().min(1).max(128), ...ExecutionArgs }).strict(),
    async ({ node_id, execution_id, context }) =>
      await deps.actions.revokeHost(principal, node_id, scopeOf({ execution_id, context })),
  );

  register(
    "aegis.execution.start",
    "Start a task: the session's one top-level execution (or, with parent_id, a subordinate " +
      "task). Tool calls in the session run under it; cancelling it cancels them all.",
    z.object({
      title: z.string().min(1).max(200),
      parent_id: z.string().max(64).optional(),
      context: z.string().max(64).optional(),
      tenant_id: z.string().max(128).optional(),
    }).strict(),
    async (args) => {
      const handle = await deps.executions.open(principal, {
        kind: "task",
        title: args.title,
        tool: "aegis.execution.start",
        ...(args.parent_id ? { parentId: args.parent_id } : {}),
        ...(caller.sessionId ? { sessionId: caller.sessionId } : {}),
        ...(args.context ? { context: args.context } : {}),
        ...(args.tenant_id ? { tenantId: args.tenant_id } : {}),
      });
      return { execution: handle.record, context: contextView(handle.context) };
    },
  );

  register(
    "aegis.execution.tree",
    "Show an execution and everything under it, from its root.",
    z.object({ execution_id: z.string().min(1).max(64) }).strict(),
    async (args) => await deps.executions.tree(principal, args.execution_id),
  );

  register(
    "aegis.execution.finish",
    "Finish a task: it ends as succeeded and anything still running under it is cancelled.",
    z.object({ execution_id: z.string().min(1).max(64) }).strict(),
    async (args) => ({
      execution_id: args.execution_id,
      cancelled: await deps.executions.finish(principal, args.execution_id),
    }),
  );

  register(
    "aegis.execution.cancel",
    "Cancel an execution and every running execution under it (remote processes included).",
    z.object({ execution_id: z.string().min(1).max(64), reason: z.string().max(200).optional() })
      .strict(),
    async (args) => ({
      execution_id: args.execution_id,
      cancelled: await deps.executions.cancel(principal, args.execution_id, args.reason),
    }),
  );

  const fleetTool = (name: EdgeToolName, operation: OperationName, description: string) =>
    register(
      name,
      description,
      z.object({
        ...FleetArgs,
        ...(operation === "exec"
          ? {
            argv: z.array(z.string().max(32_768)).min(1).max(1_000).optional(),
            shell: z.string().min(1).max(65_536).optional(),
          }
          : {}),
        // As `aegis edge fleet upgrade`: the daemon checks these again (daemon_update.ts).
        ...(operation === "upgrade"
          ? {
            version: z.string().min(1).max(64).optional(),
            connect_deadline_secs: z.number().int().min(5).max(3_600).default(60),
          }
          : {}),
      }).strict(),
      async (args, ctx) => {
        const { target, mode, on_error, deadline_secs, tenant_id, execution_id, context } = args;
        const extra = args as {
          argv?: string[];
          shell?: string;
          version?: string;
          connect_deadline_secs?: number;
        };
        if (operation === "exec" && Boolean(extra.argv) === Boolean(extra.shell)) {
          throw new AegisError("INVALID_ARGUMENT", "give exactly one of argv or shell");
        }
        return await runFleet(deps, ctx, caller, {
          operation,
          target,
          mode: parseMode(mode),
          onError: parseErrorPolicy(on_error),
          deadlineSecs: deadline_secs,
          arguments: operation === "exec"
            ? {
              ...(extra.argv ? { argv: extra.argv } : { shell: extra.shell }),
              timeout_secs: deadline_secs,
            }
            : operation === "upgrade"
            ? {
              connect_deadline_secs: extra.connect_deadline_secs,
              ...(extra.version ? { version: extra.version } : {}),
            }
            : {},
          ...(tenant_id ? { tenantId: tenant_id } : {}),
        }, scopeOf({ execution_id, context }));
      },
    );
  fleetTool(
    "aegis.edge.fleet.exec",
    "exec",
    "Run a command on every host a target selects, in waves; each host's result streams as " +
      "progress. Cancelling the request cancels the hosts still running.",
  );
  fleetTool(
    "aegis.edge.fleet.rotate_keys",
    "keys.rotate",
    "Rotate the Ed25519 keys of every host a target selects, in waves.",
  );
  fleetTool(
    "aegis.edge.fleet.refresh_tokens",
    "token.refresh",
    "Refresh the node tokens of every host a target selects, in waves.",
  );

  fleetTool(
    "aegis.edge.fleet.upgrade",
    "upgrade",
    "Update every host a target selects to the release this controller serves, in waves; a " +
      "host that does not reconnect on the new version in time rolls back by itself.",
  );

  register(
    "aegis.edge.fleet.results",
    "The results of a fleet operation, host by host.",
    z.object({ op_id: z.string().min(1).max(64) }).strict(),
    async (args) => await deps.fleet.show(principal, args.op_id),
  );

  register(
    "aegis.edge.fleet.stop",
    "Stop a running fleet operation: no more hosts start; running hosts finish.",
    z.object({ op_id: z.string().min(1).max(64) }).strict(),
    async (args) => {
      await deps.fleet.stop(principal, args.op_id);
      return { op_id: args.op_id, stop_requested: true };
    },
  );

  return server;
}

async function runCommand(
  deps: McpToolDeps,
  ctx: ServerContext,
  caller: McpCaller,
  nodeId: string,
  request: Parameters<ToolCallService["execute"]>[2],
  scope: ExecutionScope,
  tool: EdgeToolName = "aegis.edge.command.run",
) {
  const progress = progressReporter(ctx);
  const output = { stdout: "", stderr: "", bytes: 0, clipped: false };
  let result: Record<string, unknown> = {};
  const decoder = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  for await (
    const event of deps.actions.runTool(caller.principal, nodeId, request, {
      ...scope,
      tool,
      signal: callSignal(ctx, caller),
    })
  ) {
    if (event.type === "started") {
      result = { call_id: event.call_id, node_id: event.node_id };
      await progress(0, `started on ${event.node_id}`);
    } else if (event.type === "stdout" || event.type === "stderr") {
      const text = decoder[event.type].decode(event.data, { stream: true });
      output.bytes += event.data.length;
      if (output.stdout.length + output.stderr.length + text.length <= MAX_RESULT_OUTPUT) {
        output[event.type] += text;
      } else {
        output.clipped = true;
      }
      await progress(output.bytes, `${event.type}: ${text.slice(0, MAX_PROGRESS_TEXT)}`);
    } else if (event.type === "exit") {
      result = {
        ...result,
        exit_code: event.exit_code,
        signal: event.signal || null,
        timed_out: event.timed_out,
        truncated: event.truncated,
        duration_ms: event.duration_ms,
        ...(event.result_json ? { result: parsedResult(event.result_json) } : {}),
      };
    } else if (event.type === "refused") {
      throw new AegisError(
        "FORBIDDEN",
        `the host refused the call: ${event.code}: ${event.message}`,
      );
    }
  }
  return {
    ...result,
    stdout: output.stdout,
    stderr: output.stderr,
    ...(output.clipped ? { output_clipped: true, output_bytes: output.bytes } : {}),
  };
}

async function runFleet(
  deps: McpToolDeps,
  ctx: ServerContext,
  caller: McpCaller,
  request: Parameters<EdgeActions["fleet"]>[1],
  scope: ExecutionScope,
) {
  const progress = progressReporter(ctx);
  const results: unknown[] = [];
  let summary: unknown;
  let operation: unknown;
  let done = 0;
  for await (
    const event of deps.actions.fleet(
      caller.principal,
      { ...request, signal: callSignal(ctx, caller) },
      scope,
    )
  ) {
    if (event.type === "operation") {
      operation = event;
      await progress(0, `operation ${event.op_id}: ${event.total} host(s)`, event.total);
    } else if (event.type === "result") {
      done++;
      if (results.length < MAX_HOSTS_LISTED) results.push(event);
      await progress(done, `${event.name || event.node_id}: ${event.status} ${event.detail ?? ""}`);
    } else if (event.type === "summary") {
      summary = event;
    }
  }
  return { operation, summary, results, ...(done > results.length ? { truncated: true } : {}) };
}

/** A tool's JSON result as a value (left as text when a host sent something else). */
function parsedResult(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}

/** The call's cancellation, by whichever way the client sends it. */
function callSignal(ctx: ServerContext, caller: McpCaller): AbortSignal {
  return caller.cancel ? AbortSignal.any([ctx.mcpReq.signal, caller.cancel]) : ctx.mcpReq.signal;
}

/** Progress notifications, when the client asked for them (it sent a progressToken). */
function progressReporter(ctx: ServerContext) {
  const token = ctx.mcpReq._meta?.progressToken;
  let total: number | undefined;
  return async (progress: number, message: string, setTotal?: number) => {
    if (setTotal !== undefined) total = setTotal;
    if (token === undefined || ctx.mcpReq.signal.aborted) return;
    await ctx.mcpReq.notify({
      method: "notifications/progress",
      params: {
        progressToken: token,
        progress,
        ...(total !== undefined ? { total } : {}),
        message,
      },
    }).catch(() => {});
  };
}

function contextView(context: ReturnType<SecurityContexts["resolve"]>) {
  const { withheld: _withheld, ...shown } = context;
  return { ...shown, tools: [...context.tools] };
}

function ok(value: unknown): CallToolResult {
  const structured = JSON.parse(JSON.stringify(value, binaryAsBase64)) as Record<string, unknown>;
  return {
    content: [{ type: "text", text: JSON.stringify(structured) }],
    structuredContent: structured,
  };
}

function failed(error: unknown, log: (message: string) => void): CallToolResult {
  const aegis = toAegisError(error);
  let shown = aegis;
  if (aegis.code === "INTERNAL") {
    // Its own words (a database's message, a stack) stay in the log under a reference.
    const ref = crypto.randomUUID().slice(0, 8);
    log(`mcp: internal error ${ref}: ${error instanceof Error ? error.stack : String(error)}`);
    shown = new AegisError("INTERNAL", `internal error (logged as ${ref})`);
  }
  const retry = shown.details.retry_after_secs;
  return {
    isError: true,
    content: [{
      type: "text",
      text: `${shown.code}: ${shown.message}${shown.hint ? ` (${shown.hint})` : ""}` +
        (retry ? ` [retry after ${retry} s]` : ""),
    }],
    structuredContent: { error: shown.toJSON() },
  };
}

function binaryAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? toBase64(value) : value;
}
