// REST for approved enrollment patterns: GET lists, POST adds, DELETE removes by id.
import type { Hono } from "hono";
import { z } from "zod";
import type { ApprovedPatterns } from "../app/approved_patterns.ts";
import type { ApiEnv } from "./auth.ts";
import { parseBody } from "./validation.ts";

// Syntax is checked by the domain so its error names the bad pattern or CIDR; caps bound work.
const AddBody = z.object({
  pattern: z.string().min(1).max(253),
  cidrs: z.array(z.string().min(1).max(64)).min(1).max(64),
  tenant_id: z.string().min(1).max(128).optional(),
}).strict();

export function approvedRoutes(v1: Hono<ApiEnv>, approved: ApprovedPatterns): void {
  v1.get("/edge/approved-patterns", async (c) => {
    const tenant = c.req.query("tenant_id");
    const list = await approved.list(c.get("operator"), tenant?.slice(0, 128));
    return c.json({ patterns: list });
  });

  v1.post("/edge/approved-patterns", async (c) => {
    const body = await parseBody(c, AddBody);
    return c.json(await approved.add(c.get("operator"), body), 201);
  });

  v1.delete("/edge/approved-patterns/:id", async (c) => {
    const id = c.req.param("id").slice(0, 64);
    return c.json(await approved.remove(c.get("operator"), id));
  });
}
