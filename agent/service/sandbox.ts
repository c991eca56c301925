// Which paths under home the daemon still needs once the unit hides home (ProtectHome=tmpfs).
// A compiled binary needs only itself. Under `deno run` Deno also reads the project the main
// module belongs to (its deno.json, imports and node_modules) and its module cache. These are
// bound read-only: the daemon writes nowhere but its state directory. The unit sets only HOME,
// so the cache the daemon sees is the default one under it, whatever DENO_DIR says here.
import { dirname, join } from "node:path/posix";
import { exists } from "../../shared/fs/atomic.ts";

const SCRIPT = /\.(m?[jt]s|[jt]sx)$/;
const PROJECT_MARKERS = ["deno.json", "deno.jsonc", "package.json"];

export function isUnder(path: string, dir: string): boolean {
  const base = dir.endsWith("/") ? dir : `${dir}/`;
  return path === dir || path.startsWith(base);
}

export async function homeReadOnlyPaths(command: string[], home: string): Promise<string[]> {
  const paths: string[] = [];
  for (const [i, arg] of command.entries()) {
    if (!arg.startsWith("/")) continue;
    paths.push(i > 0 && SCRIPT.test(arg) ? await projectRoot(arg, home) : arg);
  }
  if (command.length > 1) {
    const cache = join(home, ".cache", "deno");
    if (await exists(cache)) paths.push(cache);
  }
  const inHome = [...new Set(paths)].filter((p) => isUnder(p, home) && p !== home);
  // A path inside another bound path is already visible.
  return inHome.filter((p) => !inHome.some((q) => q !== p && isUnder(p, q)));
}

/** The nearest directory above the module holding a project file, as Deno discovers it. */
async function projectRoot(module: string, home: string): Promise<string> {
  for (let dir = dirname(module); isUnder(dir, home) && dir !== home; dir = dirname(dir)) {
    for (const marker of PROJECT_MARKERS) {
      if (await exists(join(dir, marker))) return dir;
    }
  }
  return dirname(module);
}
