// `aegis executions list | show | cancel | finish`: the execution trees of a tenant (tasks, tool
// calls, fleet operations and each host's part), as the controller keeps them. Cancelling one
// cancels everything running under it, remote processes included.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import { type CliContext, outputOption } from "./context.ts";

type Options = TargetOptions & { output: string };

interface Execution {
  id: string;
  parent_id: string | null;
  kind: string;
  title: string;
  context: string;
  subject: string;
  status: string;
  detail: string | null;
  ref: string | null;
  created_at: string;
  ended_at: string | null;
}

interface ExecutionNode extends Execution {
  children: ExecutionNode[];
}

export async function listExecutions(
  options: Options & { tenant?: string; status?: string; limit?: string },
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, env));
  const query = new URLSearchParams();
  if (options.tenant) query.set("tenant_id", options.tenant);
  if (options.status) query.set("status", options.status);
  if (options.limit) query.set("limit", options.limit);
  const { executions } = await api.get<{ executions: Execution[] }>(
    `/v1/executions${query.size ? `?${query}` : ""}`,
  );
  if (options.output === "json") {
    io.out(JSON.stringify(executions, null, 2) + "\n");
    return 0;
  }
  if (executions.length === 0) {
    io.out("no executions\n");
    return 0;
  }
  for (const e of executions) {
    io.out(
      `${e.id}  ${e.status.padEnd(9)}  ${e.kind.padEnd(7)}  ${e.created_at}  ${e.subject}  ` +
        `${e.title}\n`,
    );
  }
  return 0;
}

export async function showExecution(
  id: string,
  options: Options,
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, env));
  const shown = await api.get<{ tree: ExecutionNode; truncated: boolean }>(
    `/v1/executions/${encodeURIComponent(id)}`,
  );
  if (options.output === "json") {
    io.out(JSON.stringify(shown, null, 2) + "\n");
    return 0;
  }
  const lines: string[] = [];
  const walk = (node: ExecutionNode, prefix: string, last: boolean, root: boolean) => {
    const branch = root ? "" : last ? "└─ " : "├─ ";
    const mark = node.id === id ? "  ◀" : "";
    lines.push(
      `${prefix}${branch}${node.id} ${node.status} ${node.kind} [${node.context}] ${node.title}` +
        `${node.detail ? ` (${node.detail})` : ""}${mark}`,
    );
    const next = root ? "" : prefix + (last ? "   " : "│  ");
    node.children.forEach((child, i) => walk(child, next, i === node.children.length - 1, false));
  };
  walk(shown.tree, "", true, true);
  if (shown.truncated) lines.push("… (more executions than shown)");
  io.out(lines.join("\n") + "\n");
  return 0;
}

export async function changeExecution(
  action: "cancel" | "finish",
  id: string,
  options: Options & { reason?: string },
  io: Io,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const api = new OperatorApi(resolveTarget(options, env));
  const result = await api.post<{ cancelled: string[] }>(
    `/v1/executions/${encodeURIComponent(id)}/${action}`,
    action === "cancel" && options.reason ? { reason: options.reason } : {},
  );
  if (options.output === "json") {
    io.out(JSON.stringify(result, null, 2) + "\n");
    return 0;
  }
  const n = result.cancelled.length;
  io.out(
    action === "cancel"
      ? (n ? `✔ cancelled ${n} execution(s) under ${id}\n` : `${id} had already ended\n`)
      : `✔ ${id} finished${n ? `; cancelled ${n} execution(s) still running under it` : ""}\n`,
  );
  return 0;
}

export function registerExecutions(program: Command, { io, setExit }: CliContext): void {
  const executions = program.command("executions")
    .description("execution trees: tasks, tool calls and fleet operations, and cancelling them");
  const endpoint = ["--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)"] as const;
  const token = ["--token <jwt>", "operator token (or AEGIS_TOKEN)"] as const;
  executions.command("list")
    .description("top-level executions of a tenant, newest first")
    .option("--tenant <id>", "tenant (default: your token's own)")
    .option("--status <status>", "running | succeeded | failed | cancelled")
    .option("--limit <n>", "at most this many (1-200)")
    .addOption(outputOption())
    .option(...endpoint)
    .option(...token)
    .action(async (opts) => setExit(await listExecutions(opts, io)));
  executions.command("show")
    .description("an execution and the whole tree it belongs to")
    .argument("<execution-id>")
    .addOption(outputOption())
    .option(...endpoint)
    .option(...token)
    .action(async (id, opts) => setExit(await showExecution(id, opts, io)));
  executions.command("cancel")
    .description("cancel an execution and everything running under it")
    .argument("<execution-id>")
    .option("--reason <text>", "why (kept with the execution)")
    .addOption(outputOption())
    .option(...endpoint)
    .option(...token)
    .action(async (id, opts) => setExit(await changeExecution("cancel", id, opts, io)));
  executions.command("finish")
    .description("end a task as succeeded (work still under it is cancelled)")
    .argument("<execution-id>")
    .addOption(outputOption())
    .option(...endpoint)
    .option(...token)
    .action(async (id, opts) => setExit(await changeExecution("finish", id, opts, io)));
}
