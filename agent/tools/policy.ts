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

/** Variables that choose which code runs: with them a listed tool could run anything. */
const LOADER_VARIABLES =
  /^(PATH|LD_PRELOAD|LD_LIBRARY_PATH|LD_AUDIT|DYLD_.*|PATHEXT|BASH_ENV|ENV|IFS)$/i;

/**
 * "shell" permits anything. Otherwise only a listed program, named bare (so it is the one on
 * the daemon's PATH, not any file that happens to share its name), with no environment that
 * would change which code it loads.
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
  const loader = Object.keys(args.env ?? {}).find((name) => LOADER_VARIABLES.test(name));
  if (loader) {
    throw new ToolRefusal(
      "TOOL_NOT_ALLOWED",
      `setting ${loader} is not allowed without "shell" in local_tools: it changes which code runs`,
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
 * mount point that leads outside is judged by where it leads.
 */
export async function resolveCwd(config: EdgeConfig, cwd: string | undefined): Promise<string> {
  const mounts = config.mount_points.map(expandHome);
  const base = mounts[0] ?? homeDir();
  if (cwd === undefined) return await realDirectory(base);
  const real = await realDirectory(isAbsolute(cwd) ? cwd : resolve(base, expandHome(cwd)));
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
