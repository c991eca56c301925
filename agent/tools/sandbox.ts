// Runs each command with the daemon's state directory (node.key, node.token, secrets/) hidden
// behind an empty tmpfs, in its own pid namespace with a fresh /proc (so /proc/<daemon>/root,
// /cwd, /fd and /environ cannot be named), no capabilities (so root cannot unmount the tmpfs) and
// a minimal /dev (so no raw disk). bubblewrap does the work; where it is missing or cannot create
// namespaces the host says so once, and edge.sandbox decides: "required" refuses every call,
// "best-effort" runs unprotected, "off" never tries.
import { join } from "node:path";
import type { EdgeConfig } from "../../shared/config/edge_config.ts";
import { findProgram } from "./which.ts";
import { ToolRefusal } from "./refusal.ts";

export interface SandboxStatus {
  available: boolean;
  /** The bwrap executable, when available. */
  program?: string;
  /** Why not, or what protects calls: for the daemon log and `aegis edge status`. */
  detail: string;
}

export interface Wrapper {
  program: string;
  args: string[];
}

const PROBE_TIMEOUT_MS = 15_000;

let probed: Promise<SandboxStatus> | undefined;

/** Probed once per process: a real sandbox is started and must hide a real file. */
export function sandboxStatus(): Promise<SandboxStatus> {
  probed ??= probe();
  return probed;
}

/**
 * The wrapper for one call, or undefined to run it as is. `hide` are the directories to hide,
 * already resolved to real paths by the caller.
 */
export async function sandboxFor(
  config: EdgeConfig,
  hide: string[],
  cwd: string,
): Promise<Wrapper | undefined> {
  const mode = config.edge.sandbox;
  if (mode === "off") return undefined;
  const status = await sandboxStatus();
  if (!status.available) {
    if (mode === "best-effort") return undefined;
    throw new ToolRefusal(
      "SANDBOX_UNAVAILABLE",
      `edge.sandbox is "required" but this host cannot sandbox calls: ${status.detail}`,
    );
  }
  return { program: status.program!, args: bwrapArgs(hide, cwd) };
}

export function bwrapArgs(hide: string[], cwd: string): string[] {
  return [
    // The host's whole file system as it is (recursive bind, mounts do not propagate back) …
    "--bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    // … minus the daemon's own state.
    ...hide.flatMap((dir) => ["--tmpfs", dir]),
    "--unshare-pid",
    // The command dies with the daemon; a timeout's SIGKILL to bwrap takes the namespace with it.
    "--die-with-parent",
    "--cap-drop",
    "ALL",
    "--chdir",
    cwd,
  ];
}

async function probe(): Promise<SandboxStatus> {
  if (Deno.build.os !== "linux") {
    return { available: false, detail: `no sandbox on ${Deno.build.os}` };
  }
  const path = Deno.env.get("PATH");
  const program = findProgram("bwrap", path, "/");
  if (!program) {
    return { available: false, detail: "bubblewrap (bwrap) is not installed" };
  }
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "aegis-sandbox-probe-" }));
  try {
    const secret = join(dir, "probe");
    await Deno.writeTextFile(secret, "");
    const out = await new Deno.Command(program, {
      args: [...bwrapArgs([dir], "/"), "--", "test", "!", "-e", secret],
      env: { PATH: path ?? "/usr/bin:/bin" },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    }).output();
    if (out.success) {
      return {
        available: true,
        program,
        detail: `bubblewrap (${program}) hides the state directory`,
      };
    }
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0] || `exit ${out.code}`;
    return { available: false, detail: `bubblewrap cannot create a sandbox here: ${why}` };
  } catch (error) {
    return { available: false, detail: `bubblewrap could not be run: ${(error as Error).message}` };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
