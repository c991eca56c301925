// Keeps the current and the previous version (the one a rollback returns to); deletes the rest,
// and staging directories an interrupted download left behind.
import { join } from "node:path";
import type { UpdateLayout } from "./layout.ts";

export async function pruneVersions(layout: UpdateLayout, keep: string[]): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(layout.versions)) {
      if (keep.includes(entry.name)) continue;
      await Deno.remove(join(layout.versions, entry.name), { recursive: true }).catch(() => {});
      if (!entry.name.startsWith(".")) removed.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return removed.sort();
}
