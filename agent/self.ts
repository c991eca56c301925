// How to start this same program again, for the service manager's `<self> edge run`. Under
// `deno run` that is the runtime plus the entry module; a `deno compile`d binary is enough
// alone (its Deno.mainModule is a file: URL too, which is why the runtime's name decides).
import { fileURLToPath } from "node:url";

export interface SelfRuntime {
  execPath: string;
  mainModule: string;
}

export function selfCommand(
  runtime: SelfRuntime = { execPath: Deno.execPath(), mainModule: Deno.mainModule },
): string[] {
  const exe = runtime.execPath.split(/[\\/]/).pop()?.toLowerCase();
  const isDeno = exe === "deno" || exe === "deno.exe";
  const url = new URL(runtime.mainModule);
  if (isDeno && url.protocol === "file:" && /\.m?ts$/.test(url.pathname)) {
    return [runtime.execPath, "run", "-A", fileURLToPath(url)];
  }
  return [runtime.execPath];
}
