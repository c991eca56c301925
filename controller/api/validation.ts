// Request bodies are parsed with zod; a failure names every bad field.
import type { Context } from "hono";
import type { z } from "zod";
import { AegisError } from "../../shared/errors.ts";

export async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let raw: unknown = {};
  const text = await c.req.text();
  if (text.trim()) {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new AegisError("INVALID_ARGUMENT", "the request body is not valid JSON");
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`);
    throw new AegisError("INVALID_ARGUMENT", `invalid request body: ${fields.join("; ")}`);
  }
  return parsed.data;
}
