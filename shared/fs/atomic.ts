// Files are replaced whole or not at all: write a temp file beside the target, fsync, chmod,
// rename over it, then fsync the directory. A crash leaves either the old file or the new one,
// never half of one; and once the call returns, a power loss cannot undo the rename (the
// directory entry is on disk too, which is what makes a key swap durable).
import { dirname, join } from "node:path";

export interface WriteOptions {
  /** File mode, e.g. 0o600 for keys and tokens. */
  mode?: number;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o644;
  const temp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID()}.tmp`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = await Deno.open(temp, { write: true, createNew: true, mode });
  try {
    await writeAll(file, bytes);
    await file.sync();
  } finally {
    file.close();
  }
  try {
    // The umask may have narrowed the mode at creation; set it exactly.
    if (Deno.build.os !== "windows") await Deno.chmod(temp, mode);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  await syncDir(dirname(path));
}

/** Removes a file (if present) and makes the removal durable; true when it existed. */
export async function removeFileDurable(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  await syncDir(dirname(path));
  return true;
}

/**
 * Flushes a directory's entries (renames, unlinks) to disk. Windows cannot open a directory as
 * a file and commits renames through the NTFS journal, so there it does nothing.
 */
export async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/** Creates the directory (and parents) if missing; returns true when it was created. */
export async function ensureDir(path: string, mode = 0o700): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    if (!info.isDirectory) throw new Error(`${path} exists and is not a directory`);
    return false;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(path, { recursive: true, mode });
  if (Deno.build.os !== "windows") await Deno.chmod(path, mode);
  return true;
}

export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The permission bits of a path, or undefined when it does not exist (or on Windows). */
export async function modeOf(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.mode === null ? undefined : info.mode & 0o777;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

function basename(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
