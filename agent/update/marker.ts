// The pending-update marker, ~/.aegis/edge/update.json: what a switch promised and by when. It
// lets the new daemon judge itself when nobody waits for it (a fleet upgrade, or an `aegis
// update` that was interrupted): pending until the new version's daemon reaches Connected (it
// then deletes the file), rolled_back when the deadline passed first. Written atomically, read
// with a schema: a torn or hand-edited file is ignored rather than trusted.
import { z } from "zod";
import { readTextIfExists, removeFileDurable, writeFileAtomic } from "../../shared/fs/atomic.ts";
import { VERSION_PATTERN } from "../../shared/release/manifest.ts";

export const MarkerSchema = z.object({
  schema: z.literal(1),
  from_version: z.string().regex(VERSION_PATTERN),
  to_version: z.string().regex(VERSION_PATTERN),
  started_at: z.string().datetime(),
  /** The new daemon must be Connected before this instant, or the switch is undone. */
  deadline: z.string().datetime(),
  /**
   * When a daemon of the new version first started. Its window (deadline − started_at) runs
   * from then: an update cut off between the switch and the restart is judged when the new
   * version first runs, not rolled back unseen; a crash-looping one keeps its first start.
   */
  first_start_at: z.string().datetime().optional(),
  state: z.enum(["pending", "rolled_back"]),
  /** Why it was rolled back, for the person or operator who asked for the update. */
  reason: z.string().max(1024).optional(),
}).strict();

export type UpdateMarker = z.infer<typeof MarkerSchema>;

export async function readMarker(path: string): Promise<UpdateMarker | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined || text.length > 16 * 1024) return undefined;
  try {
    const parsed = MarkerSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function writeMarker(path: string, marker: UpdateMarker): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(marker, null, 2) + "\n", { mode: 0o600 });
}

export async function clearMarker(path: string): Promise<void> {
  await removeFileDurable(path);
}

export function pendingMarker(from: string, to: string, deadlineMs: number, now = new Date()) {
  return {
    schema: 1 as const,
    from_version: from,
    to_version: to,
    started_at: now.toISOString(),
    deadline: new Date(now.getTime() + deadlineMs).toISOString(),
    state: "pending" as const,
  };
}
