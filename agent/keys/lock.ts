// One credential change at a time per host: `aegis edge keys rotate`, `aegis edge token refresh`
// and the daemon's own upkeep take an exclusive lock on `.credentials.lock` first. Without it
// the daemon could finish a rotation the CLI is still running and the two would supersede each
// other's tokens. An OS file lock (flock) is released when its process dies, so a crash never
// leaves the host locked.
import { join } from "node:path";
import type { EdgePaths } from "../state/paths.ts";

export async function withCredentialLock<T>(paths: EdgePaths, fn: () => Promise<T>): Promise<T> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(join(paths.dir, ".credentials.lock"), {
      create: true,
      write: true,
      mode: 0o600,
    });
  } catch (error) {
    // No state directory: not enrolled, which `fn` reports in its own words.
    if (error instanceof Deno.errors.NotFound) return await fn();
    throw error;
  }
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close(); // closing releases the lock
  }
}
