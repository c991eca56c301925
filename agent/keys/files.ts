// Several files replaced at once with the guarantee of writeFileAtomic for each (whole or not at
// all, durable once this returns), for a third of the waiting: the temp files are written and
// fsynced side by side, renamed, and each directory is fsynced once instead of once per file. A
// crash before the return may leave any subset renamed, so a group holds only files whose
// partial replacement the rotation can recover from (see swap.ts).
import { dirname, join } from "node:path";
import { syncDir } from "../../shared/fs/atomic.ts";

export interface FileWrite {
  path: string;
  data: string;
  mode: number;
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
  const removed = await Promise.all(paths.map(async (path) => {
    try {
      await Deno.remove(path);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }));
  await syncDirs(paths.filter((_, i) => removed[i]));
}

async function syncDirs(paths: readonly string[]): Promise<void> {
  await Promise.all([...new Set(paths.map((p) => dirname(p)))].map(syncDir));
}

async function writeTemp(file: FileWrite): Promise<string> {
  const temp = join(dirname(file.path), `.${basename(file.path)}.${crypto.randomUUID()}.tmp`);
  const bytes = new TextEncoder().encode(file.data);
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
  // The umask may have narrowed the mode at creation; set it exactly.
  if (Deno.build.os !== "windows") {
    await Deno.chmod(temp, file.mode).catch(async (error) => {
      await Deno.remove(temp).catch(() => {});
      throw error;
    });
  }
  return temp;
}

function basename(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
