// Executions over REST: start a task, list a tenant's, show one as a tree, cancel (the whole
// subtree, remote processes included), finish, and end a conversation. Consumer users reach
// these too, each for its own executions; the service decides what each caller may see.
import type { Context, Hono } from "hono";
import { z } from "zod";
import { AegisError } from "../../shared/errors.ts";
import type { ExecutionScope } from "../app/edge_actions.ts";
import type { ExecutionService, ExecutionStatus } from "../app/executions.ts";
import type { ApiEnv } from "./auth.ts";
import { parseBody } from "./validation.ts";

const TaskBody = z.object({
  title: z.string().min(1).max(200),
  context: z.string().min(1).max(64).optional(),
  parent_id: z.string().min(1).max(64).optional(),
  session_id: z.string().min(1).max(128).optional(),
  tenant_id: z.string().min(1).max(128).optional(),
}).strict();

const CancelBody = z.object({ reason: z.string().max(200).optional() }).strict();
const SessionBody = z.object({ session_id: z.string().min(1).max(128) }).strict();
const STATUSES = ["running", "succeeded", "failed", "cancelled"] as const;

/**
 * Where REST work goes in the execution tree: headers name the parent execution and the
 * conversation (X-Aegis-Execution-Id, X-Aegis-Session-Id), as MCP tool arguments do.
 */
export function scopeOf(c: Context): ExecutionScope {
  const parentId = c.req.header("x-aegis-execution-id")?.trim();
  const sessionId = c.req.header("x-aegis-session-id")?.trim();
  return {
    ...(parentId ? { parentId } : {}),
    ...(sessionId ? { sessionId } : {}),
  };
}

export function executionRoutes(v1: Hono<ApiEnv>, executions: ExecutionService): void {
  v1.post("/executions", async (c) => {
    const body = await parseBody(c, TaskBody);
    const handle = await executions.open(c.get("operator"), {
      kind: "task",
      title: body.title,
      tool: "aegis.execution.start",
      ...(body.context ? { context: body.context } : {}),
      ...(body.parent_id ? { parentId: body.parent_id } : {}),
      ...(body.session_id ? { sessionId: body.session_id } : {}),
      ...(body.tenant_id ? { tenantId: body.tenant_id } : {}),
    });
    return c.json({ execution: handle.record }, 201);
  });

  v1.get("/executions", async (c) => {
    const status = c.req.query("status");
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) {
      throw new AegisError("INVALID_ARGUMENT", `status is one of ${STATUSES.join(", ")}`);
    }
    const limit = Number(c.req.query("limit") ?? 50);
    const list = await executions.list(c.get("operator"), {
      tenantId: c.req.query("tenant_id"),
      status: status as ExecutionStatus | undefined,
      limit: Number.isFinite(limit) ? limit : 50,
    });
    return c.json({ executions: list });
  });

  v1.get("/executions/:id", async (c) => {
    const id = c.req.param("id");
    const execution = await executions.show(c.get("operator"), id);
    const { root, truncated } = await executions.tree(c.get("operator"), id);
    return c.json({ execution, tree: root, truncated });
  });

  v1.post("/executions/:id/cancel", async (c) => {
    const body = await parseBody(c, CancelBody);
    const cancelled = await executions.cancel(c.get("operator"), c.req.param("id"), body.reason);
    return c.json({ id: c.req.param("id"), cancelled });
  });

  v1.post("/executions/:id/finish", async (c) => {
    const cancelled = await executions.finish(c.get("operator"), c.req.param("id"));
    return c.json({ id: c.req.param("id"), finished: true, cancelled });
  });

  v1.post("/sessions/end", async (c) => {
    const body = await parseBody(c, SessionBody);
    const cancelled = await executions.endSession(c.get("operator"), body.session_id);
    return c.json({ session_id: body.session_id, cancelled });
  });
}
