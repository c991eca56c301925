// File steps shared by the managers: the unit file is the one thing whose failure is fatal.
import { dirname, join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { ensureDir, writeFileAtomic } from "../../shared/fs/atomic.ts";

export async function writeUnitFile(path: string, text: string): Promise<void> {
  try {
    await ensureDir(dirname(path), 0o700);
    // 0644: the manager reads it, and it holds nothing secret.
    await writeFileAtomic(path, text, { mode: 0o644 });
  } catch (error) {
    throw new AegisError("INTERNAL", `cannot write the service file ${path}`, {
      cause: error,
      hint: "Check that the directory is writable by this user.",
      details: { path, reason: error instanceof Error ? error.message : String(error) },
    });
  }
}

/**
 * The state and log directories. The systemd unit binds the first and launchd/nssm write into
 * the second, but none of them creates directories, so they must exist before the first start.
 */
export async function prepareStateDirs(stateDir: string): Promise<void> {
  try {
    await ensureDir(stateDir, 0o700);
    await ensureDir(join(stateDir, "logs"), 0o700);
  } catch (error) {
    throw new AegisError("INTERNAL", `cannot create ${stateDir}`, { cause: error });
  }
}

/** Whether a file is there; a file where a parent directory should be means it is not. */
export async function fileExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  }
}

/** Deletes a file; true when there was one. */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new AegisError("INTERNAL", `cannot remove the service file ${path}`, { cause: error });
  }
}
