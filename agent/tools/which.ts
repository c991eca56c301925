// Finding a program the way execvp would, before a wrapper (the sandbox) execs it: so a missing
// program is still a COMMAND_NOT_FOUND refusal, not a wrapper's exit status 1.
import { delimiter, isAbsolute, join, resolve } from "node:path";

export function findProgram(
  name: string,
  path: string | undefined,
  cwd: string,
): string | undefined {
  if (name.includes("/")) return isExecutableFile(resolve(cwd, name)) ? name : undefined;
  for (const dir of (path ?? "").split(delimiter)) {
    // An empty PATH entry means the current directory, as for execvp.
    const candidate = join(isAbsolute(dir) ? dir : resolve(cwd, dir), name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && (info.mode === null || (info.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}
