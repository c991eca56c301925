// PGlite is one Postgres backend in WebAssembly with no shared-memory coordination: two
// processes on one data dir corrupt it. This takes an OS-level exclusive lock (flock on Unix,
// LockFileEx on Windows) on `<dataDir>/pglite.lock`. The kernel drops it when the holder dies,
// so a crash never leaves a stale lock behind, and the pid inside is only for the message.
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";

export interface DataDirLock {
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, "pglite.lock");
  // No truncate on open: the current holder's pid must survive until we own the lock.
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) throw inUse(dataDir, await readHolder(path));
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (error) {
    if (locked) await file.unlock().catch(() => {});
    file.close();
    throw error;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      // The file stays: if we deleted it, a process that had just opened the old inode could
      // lock that while another creates and locks a new one, and both would think they own it.
      try {
        await file.unlock();
      } finally {
        file.close();
      }
    },
  };
}

async function readHolder(path: string): Promise<number | undefined> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function inUse(dataDir: string, pid: number | undefined): AegisError {
  // The holder writes its pid just after locking, so a racing reader may find none yet.
  const who = pid === undefined
    ? "another process"
    : pid === Deno.pid
    ? `this process (pid ${pid}, opened twice)`
    : `another process (pid ${pid})`;
  return new AegisError("CONFLICT", `the embedded database in ${dataDir} is in use by ${who}`, {
    hint: "Stop the other aegis-controller, or give this one its own --data-dir.",
    details: { dataDir, ...(pid === undefined ? {} : { pid: String(pid) }) },
  });
}
