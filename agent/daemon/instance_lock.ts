// One daemon per host identity. A second `aegis edge run` (started by hand beside the service, or
// by a second service manager) would take over the stream, be replaced in turn, and the two would
// trade it back and forth. The second one waits, saying why, until the first stops: an OS file
// lock (flock) that the kernel releases when its holder dies, so a crash never blocks the next
// daemon.
import { join } from "node:path";
import type { EdgePaths } from "../state/paths.ts";

/** How long the lock may take before we say another daemon holds it. */
const PROMPT_LOCK_MS = 200;

export interface DaemonLock {
  release(): void;
}

/**
 * Resolves with the held lock, or undefined when `signal` aborted while another daemon held it.
 * Without a state directory there is nothing to guard (loading the identity says "not enrolled").
 */
export async function holdDaemonLock(
  paths: EdgePaths,
  signal: AbortSignal,
  log: (message: string) => void,
): Promise<DaemonLock | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(join(paths.dir, ".daemon.lock"), {
      create: true,
      write: true,
      mode: 0o600,
    });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { release() {} };
    throw error;
  }
  const held = { release: () => file.close() };
  const locked = file.lock(true).then(() => true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const prompt = await Promise.race([
    locked,
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), PROMPT_LOCK_MS)),
  ]);
  clearTimeout(timer);
  if (prompt) return held;
  log(
    "another aegis edge daemon is running for this host (its pid is in state.json); " +
      "waiting for it to stop",
  );
  const aborted = new Promise<false>((resolve) => {
    if (signal.aborted) resolve(false);
    signal.addEventListener("abort", () => resolve(false), { once: true });
  });
  return await Promise.race([locked, aborted]) ? held : undefined;
}
