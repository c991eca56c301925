// How to start this same program again, for the service manager's `<self> edge run`. Under
// `deno run` that is the runtime plus the entry module; a `deno compile`d binary is enough
// alone (its Deno.mainModule is a file: URL too, which is why the runtime's name decides).
import { fileURLToPath } from "node:url";

export interface SelfRuntime {
  execPath: string;
  mainModule: string;
}

/**
 * V8 flags for the long-running daemon. Maglev (V8's mid-tier compiler) compiles on worker
 * threads whose glibc malloc arenas keep what each compile used: measured through 1,000 forced
 * reconnects, two arenas grew by ~8.5 MiB each at once, around reconnect 500, and never gave it
 * back (+7 to +17 MiB of RSS per run; with Maglev off, +1.9 MiB). The daemon is bound by I/O;
 * Sparkplug and TurboFan still compile what is hot. The compiled `aegis` carries the same flags
 * (scripts/build.ts); a foreground `deno run … edge run` keeps V8's defaults. Measured and left
 * out (`deno task bench:daemon --load`): --max-semi-space-size=1 (-6 MiB idle, up to +50 % CPU
 * on bulk tool output), --lite-mode (-11 MiB, 2.5x the CPU), --optimize-for-size (-5 MiB, twice
 * the CPU in one run). With the daemon's modules loaded and idle: --single-threaded and
 * --single-threaded-gc save nothing (within noise); --no-opt saves ~2.7 MiB, all of it pages of
 * the runtime's own binary (TurboFan's code) that are shared and clean, and is not priced under
 * --load yet.
 */
export const DAEMON_V8_FLAGS = "--no-maglev";

export function selfCommand(
  runtime: SelfRuntime = { execPath: Deno.execPath(), mainModule: Deno.mainModule },
): string[] {
  const exe = runtime.execPath.split(/[\\/]/).pop()?.toLowerCase();
  const isDeno = exe === "deno" || exe === "deno.exe";
  const url = new URL(runtime.mainModule);
  if (isDeno && url.protocol === "file:" && /\.m?ts$/.test(url.pathname)) {
    return [runtime.execPath, "run", "-A", `--v8-flags=${DAEMON_V8_FLAGS}`, fileURLToPath(url)];
  }
  return [stableBinary(runtime.execPath)];
}

/**
 * A binary `aegis update` installed runs as ~/.aegis/edge/versions/<version>/aegis (the kernel
 * resolves the `current` link it was started through). A service installed from it must run
 * ~/.aegis/edge/current/aegis, the path updates switch and roll back; pinning the version's own
 * file would start the old version again after the next update.
 */
export function stableBinary(execPath: string): string {
  const match = execPath.match(/^(.*[\\/]\.aegis[\\/]edge)[\\/]versions[\\/][^\\/]+[\\/](aegis)$/);
  return match ? `${match[1]}/current/${match[2]}` : execPath;
}
