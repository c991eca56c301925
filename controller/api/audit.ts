// The audit log over REST: GET /v1/audit/export streams a tenant's hash chain as NDJSON, so a
// chain of any length leaves the controller a page at a time and the CLI verifies it as it
// arrives. Lines, in order:
//   {"type":"anchor", tenant_id, pruned_through_seq, pruned_through_hash, head_seq, head_hash,
//    since, limit}                          where the chain starts and ends (audit_heads)
//   {"type":"record", ...AuditRecord}      one per record, in seq order
//   {"type":"end", records}                the export is complete (without it, it was cut off)
//   {"type":"error", error}                instead of "end", when reading failed midway
// The "end" line matters: an export cut short by a dropped connection would otherwise look like
// a chain whose newest records were deleted.
import { streamedError } from "./errors.ts";
import type { Hono } from "hono";
import { stream } from "hono/streaming";
import { AegisError } from "../../shared/errors.ts";
import type { AuditLog } from "../app/audit.ts";
import { resolveTenant } from "../app/operators.ts";
import type { ApiEnv } from "./auth.ts";

/** The most records one export may ask for (a whole chain by default). */
export const MAX_EXPORT_LIMIT = 10_000_000;

export function auditRoutes(v1: Hono<ApiEnv>, audit: AuditLog): void {
  v1.get("/audit/export", async (c) => {
    const tenantId = resolveTenant(c.get("operator"), boundedQuery(c.req.query("tenant_id"), 128));
    const since = parseSince(c.req.query("since"));
    const limit = parseLimit(c.req.query("limit"));
    const { anchor, records } = await audit.export(tenantId, { since, limit });
    c.header("content-type", "application/x-ndjson");
    return stream(c, async (out) => {
      let open = true;
      out.onAbort(() => {
        open = false;
      });
      const write = (line: Record<string, unknown>) => out.write(JSON.stringify(line) + "\n");
      await write({
        type: "anchor",
        ...anchor,
        since: since?.toISOString() ?? null,
        limit: limit ?? null,
      });
      let count = 0;
      try {
        for await (const record of records) {
          // A reader that went away stops the export: no more pages are read for nobody.
          if (!open) return;
          await write({ type: "record", ...record });
          count++;
        }
        await write({ type: "end", records: count });
      } catch (error) {
        await write({ type: "error", error: streamedError(error, c) });
      }
    });
  });
}

function boundedQuery(value: string | undefined, max: number): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (value.length > max) {
    throw new AegisError("INVALID_ARGUMENT", `a query parameter is longer than ${max} characters`);
  }
  return value;
}

function parseSince(value: string | undefined): Date | undefined {
  const text = boundedQuery(value, 64);
  if (text === undefined) return undefined;
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) {
    throw new AegisError("INVALID_ARGUMENT", `since must be an ISO-8601 time, not "${text}"`);
  }
  return at;
}

function parseLimit(value: string | undefined): number | undefined {
  const text = boundedQuery(value, 16);
  if (text === undefined) return undefined;
  const limit = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_EXPORT_LIMIT) {
    throw new AegisError("INVALID_ARGUMENT", `limit must be 1-${MAX_EXPORT_LIMIT}, not "${text}"`);
  }
  return limit;
}
