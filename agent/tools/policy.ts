// The host's own say over what a call may do, applied before anything starts: which tools and
// executables (local_tools) and which directories (mount_points). The controller is trusted to
// ask, never to decide.
import { basename, isAbsolute, relative, resolve } from "node:path";
import type { EdgeConfig } from "../../shared/config/edge_config.ts";
import { homeDir } from "../state/paths.ts";
import type { CmdRunArgs } from "./arguments.ts";
import { ToolRefusal } from "./refusal.ts";

const CONFIG_FILE = "~/.aegis/edge/aegis-config.yaml";
const windows = Deno.build.os === "windows";

function notAllowed(what: string, entry: string): ToolRefusal {
  return new ToolRefusal(
    "TOOL_NOT_ALLOWED",
    `${what} is not allowed on this host: add "${entry}" to local_tools in ${CONFIG_FILE}`,
  );
}

export function checkEchoAllowed(config: EdgeConfig): void {
  if (!config.local_tools.includes("echo")) throw notAllowed("tool echo", "echo");
}

/**
 * "shell" permits any program. Otherwise only a listed program, named bare (so it is the one on
 * the daemon's PATH, not any file that happens to share its name). What the call may put in the
 * environment is checked separately (checkEnvAllowed), for every call.
 */
export function checkCmdAllowed(config: EdgeConfig, args: CmdRunArgs): void {
  const tools = config.local_tools;
  if (tools.includes("shell")) return;
  if (!args.argv) throw notAllowed("cmd.run in shell mode", "shell");
  const program = programName(args.argv[0]);
  if (!tools.includes(program)) throw notAllowed(`executable "${program}"`, program);
  if (/[\\/]/.test(args.argv[0])) {
    throw new ToolRefusal(
      "TOOL_NOT_ALLOWED",
      `"${
        args.argv[0]
      }" names a path; without "shell" in local_tools, name the program bare ("${program}")`,
    );
  }
}

function programName(argv0: string): string {
  // Split on both separators: a Windows controller may send C:\tools\docker.exe to any host.
  const name = basename(argv0.replaceAll("\\", "/"));
  return windows ? name.replace(/\.(exe|cmd|bat|com)$/i, "") : name;
}

/**
 * The real directory a call runs in. Both sides go through realPath, so a symlink inside a
 * mount point that leads outside is judged by where it leads. `stateDir` is already real.
 */
export async function resolveCwd(
  config: EdgeConfig,
  cwd: string | undefined,
  stateDir: string,
): Promise<string> {
  const mounts = config.mount_points.map(expandHome);
  const base = mounts[0] ?? homeDir();
  const real = await realDirectory(
    cwd === undefined ? base : isAbsolute(cwd) ? cwd : resolve(base, expandHome(cwd)),
  );
  // Before the mount points: a mount point at or inside the state directory grants nothing.
  if (isWithin(stateDir, real)) {
    throw new ToolRefusal(
      "CWD_NOT_ALLOWED",
      `cwd "${cwd ?? base}" is inside the daemon's state directory, which tool calls never use`,
    );
  }
  if (cwd === undefined) return real;
  for (const mount of mounts) {
    const realMount = await Deno.realPath(mount).catch(() => undefined);
    if (realMount !== undefined && isWithin(realMount, real)) return real;
  }
  const allowed = mounts.length ? mounts.join(", ") : "(none configured)";
  throw new ToolRefusal(
    "CWD_NOT_ALLOWED",
    `cwd "${cwd}" is outside the mount points (${allowed}); add it to mount_points in ${CONFIG_FILE}`,
  );
}

/** Segment-aware: /home/u2 is not within /home/u. */
export function isWithin(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return !isAbsolute(rel) && rel.split(/[\\/]/)[0] !== "..";
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? homeDir() + path.slice(1) : path;
}

async function realDirectory(path: string): Promise<string> {
  let real: string;
  try {
    real = await Deno.realPath(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new ToolRefusal("CWD_MISSING", `cwd "${path}" does not exist on this host`);
  }
  if (!(await Deno.stat(real)).isDirectory) {
    throw new ToolRefusal("CWD_MISSING", `cwd "${path}" is not a directory`);
  }
  return real;
}
