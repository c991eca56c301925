// Several files replaced at once with the guarantee of writeFileAtomic for each (whole or not at
// all, durable once this returns), for a third of the waiting: the temp files are written and
// fsynced side by side (or hard-linked to a durable file holding the same bytes), renamed, and
// each directory is fsynced once instead of once per file. A crash before the return may leave
// any subset renamed, so a group holds only files whose partial replacement the rotation can
// recover from (see swap.ts).
import { dirname, join } from "node:path";
import { syncDir } from "../../shared/fs/atomic.ts";

export interface FileWrite {
  path: string;
  data: string;
  mode: number;
  /**
   * A file already made durable (written and fsynced) that may hold exactly `data`: when it
   * does, the new file is a hard link to it, so its data need not be written and fsynced again.
   * The rotation installs node.key and node.token from node.key.new and node.token.new, which
   * it fsynced minutes or milliseconds earlier. Whatever the reason it cannot be used (gone,
   * different bytes, no hard links on this file system), the data is written as usual.
   */
  durableCopy?: string;
}

export async function writeFilesAtomic(files: readonly FileWrite[]): Promise<void> {
  const settled = await Promise.allSettled(files.map(writeTemp));
  const temps = settled.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(temps.map((t) => Deno.remove(t).catch(() => {})));
    throw failed.reason;
  }
  try {
    await Promise.all(files.map((f, i) => Deno.rename(temps[i], f.path)));
  } catch (error) {
    await Promise.all(temps.map((t) => Deno.remove(t).catch(() => {})));
    throw error;
  }
  await syncDirs(files.map((f) => f.path));
}

/** Removes files (those present) and makes the removals durable, one fsync per directory. */
export async function removeFilesDurable(paths: readonly string[]): Promise<void> {
  await syncDirs(await removeFiles(paths));
}

/**
 * Removes files (those present); returns the ones removed. Not durable by itself: a crash may
 * bring them back until the directory is next fsynced (any later atomic write there does it).
 */
export async function removeFiles(paths: readonly string[]): Promise<string[]> {
  const removed = await Promise.all(paths.map(async (path) => {
    try {
      await Deno.remove(path);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }));
  return paths.filter((_, i) => removed[i]);
}

async function syncDirs(paths: readonly string[]): Promise<void> {
  await Promise.all([...new Set(paths.map((p) => dirname(p)))].map(syncDir));
}

async function writeTemp(file: FileWrite): Promise<string> {
  const temp = join(dirname(file.path), `.${basename(file.path)}.${crypto.randomUUID()}.tmp`);
  const bytes = new TextEncoder().encode(file.data);
  if (file.durableCopy && await linkIfSame(file.durableCopy, bytes, temp)) {
    return await exactMode(temp, file.mode);
  }
  const handle = await Deno.open(temp, { write: true, createNew: true, mode: file.mode });
  try {
    let written = 0;
    while (written < bytes.length) written += await handle.write(bytes.subarray(written));
    await handle.sync();
  } catch (error) {
    handle.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  handle.close();
  return await exactMode(temp, file.mode);
}

/** The umask may have narrowed the mode at creation (or a linked file had another): set it. */
async function exactMode(temp: string, mode: number): Promise<string> {
  if (Deno.build.os !== "windows") {
    await Deno.chmod(temp, mode).catch(async (error) => {
      await Deno.remove(temp).catch(() => {});
      throw error;
    });
  }
  return temp;
}

/** Hard-links `source` as `temp` when it holds exactly `bytes`; false when it cannot. */
async function linkIfSame(source: string, bytes: Uint8Array, temp: string): Promise<boolean> {
  try {
    // Only a regular file: reading and chmod follow a symlink where the link would not, and a
    // planted link must not become node.key.
    if (!(await Deno.lstat(source)).isFile) return false;
    const held = await Deno.readFile(source);
    if (held.length !== bytes.length || !held.every((b, i) => b === bytes[i])) return false;
    await Deno.link(source, temp);
    return true;
  } catch {
    return false;
  }
}

function basename(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
