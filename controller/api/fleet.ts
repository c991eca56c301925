// Fleet operations over REST. Like tool calls, progress streams as NDJSON, one event a line;
// `GET /v1/edge/fleet/operations/:opId` returns the kept results later.
import { streamedError } from "./errors.ts";
import type { Hono } from "hono";
import { stream } from "hono/streaming";
import { z } from "zod";
import { type FleetDispatcher, type OperationName, OPERATIONS } from "../app/fleet/dispatcher.ts";
import type { EdgeActions } from "../app/edge_actions.ts";
import { scopeOf } from "./executions.ts";
import { parseErrorPolicy, parseMode } from "../app/fleet/policy.ts";
import type { ApiEnv } from "./auth.ts";
import { parseBody } from "./validation.ts";

const FleetBody = z.object({
  operation: z.enum(Object.keys(OPERATIONS) as [OperationName, ...OperationName[]]),
  target: z.string().min(1),
  mode: z.string().default("rolling=5"),
  on_error: z.string().default("continue"),
  deadline_secs: z.number().int().min(1).max(86400).default(60),
  arguments: z.record(z.string(), z.unknown()).default({}),
  tenant_id: z.string().optional(),
}).strict();

export function fleetRoutes(v1: Hono<ApiEnv>, fleet: FleetDispatcher, actions: EdgeActions): void {
  v1.post("/edge/fleet/operations", async (c) => {
    const body = await parseBody(c, FleetBody);
    const events = actions.fleet(c.get("operator"), {
      operation: body.operation,
      target: body.target,
      mode: parseMode(body.mode),
      onError: parseErrorPolicy(body.on_error),
      deadlineSecs: body.deadline_secs,
      arguments: body.arguments,
      tenantId: body.tenant_id,
    }, scopeOf(c));
    // The first event proves the target resolved; errors before it are plain HTTP errors.
    const first = await events.next();
    c.header("content-type", "application/x-ndjson");
    return stream(c, async (out) => {
      // A caller that goes away (Ctrl-C, a dropped connection) stops listening, not the
      // operation: the events are still pulled to the end, so every wave runs and every result
      // is recorded, as `GET …/operations/:opId` then shows.
      let listening = true;
      out.onAbort(() => {
        listening = false;
      });
      const write = async (event: unknown) => {
        if (!listening) return;
        try {
          await out.write(JSON.stringify(event) + "\n");
        } catch {
          listening = false;
        }
      };
      try {
        if (!first.done) await write(first.value);
        for await (const event of events) await write(event);
      } catch (error) {
        await write({ type: "error", error: streamedError(error, c) });
      }
    });
  });

  // Start no more hosts; those running finish, the rest end skipped "stopped by <who>".
  v1.post("/edge/fleet/operations/:opId/stop", async (c) => {
    const opId = c.req.param("opId");
    await fleet.stop(c.get("operator"), opId);
    return c.json({ op_id: opId, stop_requested: true });
  });

  v1.get(
    "/edge/fleet/operations/:opId",
    async (c) => c.json(await fleet.show(c.get("operator"), c.req.param("opId"))),
  );
}
