// What the bootstrap plan learns about the host before it writes anything.
import { hostname, tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface HostFacts {
  os: string;
  arch: string;
  hostname: string;
  home: string;
  localTools: string[];
  mountPoints: string[];
}

/** Tools the daemon can offer, and the executables that reveal each one. */
const TOOL_PROBES: Record<string, string[]> = {
  shell: ["bash", "sh", "zsh", "pwsh", "powershell", "cmd"],
  docker: ["docker"],
  podman: ["podman"],
  kubectl: ["kubectl"],
  helm: ["helm"],
  git: ["git"],
  python: ["python3", "python"],
  node: ["node"],
  systemctl: ["systemctl"],
  terraform: ["terraform"],
  ansible: ["ansible"],
};

export function inspectHost(env: Record<string, string | undefined>, home: string): HostFacts {
  return {
    os: Deno.build.os,
    arch: Deno.build.arch,
    hostname: hostname(),
    home,
    localTools: detectTools(env.PATH ?? env.Path ?? "", Deno.build.os === "windows"),
    mountPoints: [home, tmpdir()],
  };
}

export function detectTools(pathVariable: string, windows = false): string[] {
  const dirs = pathVariable.split(windows ? ";" : delimiter).filter(Boolean);
  const suffixes = windows ? [".exe", ".cmd", ".bat", ""] : [""];
  const found = (bin: string) =>
    dirs.some((dir) => suffixes.some((suffix) => isExecutable(join(dir, bin + suffix), windows)));
  return Object.entries(TOOL_PROBES).filter(([, bins]) => bins.some(found)).map(([tool]) => tool);
}

function isExecutable(path: string, windows: boolean): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && (windows || info.mode === null || (info.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}
