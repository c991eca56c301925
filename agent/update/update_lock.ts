// One update at a time per host: `aegis update` by hand and a fleet upgrade in the daemon would
// otherwise download over each other and fight over `current` and the marker. The lock is a
// file created exclusively with the holder's pid; one left by a holder that died (its pid gone,
// or older than any update takes) is taken over.
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { readTextIfExists, removeFileDurable } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";

/** Longer than any update (download cap, pre-flight, deadline): an older lock is stale. */
const STALE_AFTER_MS = 2 * 60 * 60_000;

export interface UpdateLock {
  release(): Promise<void>;
}

export async function holdUpdateLock(paths: EdgePaths): Promise<UpdateLock> {
  const path = join(paths.dir, ".update.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await Deno.writeTextFile(path, `${Deno.pid}\n`, { createNew: true, mode: 0o600 });
      return { release: () => removeFileDurable(path).then(() => {}) };
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const holder = Number((await readTextIfExists(path))?.trim());
    if (await held(path, holder)) {
      throw new AegisError("CONFLICT", `another update is running on this host (pid ${holder})`, {
        hint: "Wait for it to finish; `aegis update --check` says what it will find.",
      });
    }
    await removeFileDurable(path);
  }
  throw new AegisError("CONFLICT", "another update took the update lock first");
}

async function held(path: string, pid: number): Promise<boolean> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (!info || !Number.isInteger(pid) || pid <= 0) return false;
  if (Date.now() - (info.mtime?.getTime() ?? 0) > STALE_AFTER_MS) return false;
  if (Deno.build.os === "linux") {
    return await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
  }
  if (Deno.build.os === "windows") return true; // no cheap liveness check: age decides
  try {
    Deno.kill(pid, "SIGCONT"); // harmless to a running process; fails for a gone one
    return true;
  } catch {
    return false;
  }
}
