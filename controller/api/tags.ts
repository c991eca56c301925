// REST for host tags: POST adds, DELETE removes; both answer with the host's tags afterwards.
import type { Hono } from "hono";
import { z } from "zod";
import type { Queryable } from "../store/db.ts";
import { addTags, removeTags } from "../app/tags.ts";
import type { ApiEnv } from "./auth.ts";
import { parseBody } from "./validation.ts";

// Tag syntax is checked by the domain so its error names the bad tag; the cap only bounds work.
const TagsBody = z.object({ tags: z.array(z.string()).min(1).max(256) }).strict();

export function tagRoutes(v1: Hono<ApiEnv>, deps: { db: Queryable }): void {
  v1.post("/edge/hosts/:nodeId/tags", async (c) => {
    const { tags } = await parseBody(c, TagsBody);
    const nodeId = c.req.param("nodeId");
    return c.json({
      node_id: nodeId,
      tags: await addTags(deps.db, c.get("operator"), nodeId, tags),
    });
  });

  v1.delete("/edge/hosts/:nodeId/tags", async (c) => {
    const { tags } = await parseBody(c, TagsBody);
    const nodeId = c.req.param("nodeId");
    return c.json({
      node_id: nodeId,
      tags: await removeTags(deps.db, c.get("operator"), nodeId, tags),
    });
  });
}
