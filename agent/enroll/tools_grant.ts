// Which tools a freshly enrolled host will run for its tenant's operators. Suggested from PATH,
// granted only deliberately: --local-tools, a person ticking them, or a config already on disk.
// Without either, nothing is granted: a host is never a remote shell by accident.
import { parse } from "yaml";
import { AegisError } from "../../shared/errors.ts";
import { readTextIfExists } from "../../shared/fs/atomic.ts";

export interface ToolGrant {
  /** What local_tools will hold. */
  granted: string[];
  /** What PATH offered, for the record and the config header. */
  detected: string[];
  source: "flag" | "prompt" | "existing" | "default";
}

/** Asks a person to narrow the suggested tools; returns the ones kept. */
export type ToolPrompter = (
  question: string,
  choices: { value: string; name: string }[],
) => Promise<
  string[]
>;

/**
 * Entries that let a caller run any command: a shell, an interpreter, or a program with an exec
 * hook in its arguments (git -c core.pager=…, find -exec, docker run -v /:/h, kubectl plugins,
 * systemctl link, terraform local-exec, ansible, ldd on a crafted binary, pip install …).
 */
const RUNS_ANY_COMMAND = new Set([
  "shell",
  "bash",
  "sh",
  "zsh",
  "pwsh",
  "powershell",
  "cmd",
  "python",
  "python3",
  "pip",
  "pip3",
  "node",
  "npm",
  "npx",
  "deno",
  "perl",
  "ruby",
  "php",
  "git",
  "find",
  "xargs",
  "env",
  "docker",
  "podman",
  "kubectl",
  "helm",
  "systemctl",
  "terraform",
  "ansible",
  "ldd",
  "make",
  "ssh",
  "sudo",
  "awk",
  "sed",
  "vim",
  "tar",
]);

export function runsAnyCommand(tools: readonly string[]): string[] {
  return tools.filter((tool) => RUNS_ANY_COMMAND.has(tool));
}

const MAX_TOOLS = 64;

/** `--local-tools shell,git` or `--local-tools none` (also ""): bare program names or "shell". */
export function parseLocalTools(value: string): string[] {
  const tools = value.split(",").map((t) => t.trim()).filter((t) => t !== "" && t !== "none");
  const bad = tools.find((t) => !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(t));
  if (bad !== undefined) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `--local-tools: "${bad}" is not a bare program name (or "shell"); separate names with commas`,
    );
  }
  if (tools.length > MAX_TOOLS) {
    throw new AegisError("INVALID_ARGUMENT", `--local-tools: at most ${MAX_TOOLS} tools`);
  }
  return [...new Set(tools)];
}

export async function decideTools(input: {
  flag?: string[];
  detected: string[];
  /** local_tools of a config that enrollment keeps or merges into. */
  existing?: string[];
  tenant: string;
  prompt?: ToolPrompter;
}): Promise<ToolGrant> {
  const { detected } = input;
  if (input.flag) return { granted: input.flag, detected, source: "flag" };
  if (input.existing) return { granted: input.existing, detected, source: "existing" };
  if (!input.prompt || detected.length === 0) return { granted: [], detected, source: "default" };
  const granted = await input.prompt(
    `Tools this host will run for tenant ${input.tenant}'s operators (space toggles, enter confirms):`,
    detected.map((tool) => ({
      value: tool,
      name: RUNS_ANY_COMMAND.has(tool) ? `${tool}  (lets them run ANY command as this user)` : tool,
    })),
  );
  return { granted, detected, source: "prompt" };
}

/** local_tools of the config enrollment will keep or merge into, if it has that key. */
export async function existingLocalTools(
  configPath: string,
  configAction: string,
): Promise<string[] | undefined> {
  if (!/^(use_existing|merge|prompt)/.test(configAction)) return undefined;
  const text = await readTextIfExists(configPath);
  if (text === undefined) return undefined;
  try {
    const tools = (parse(text) as { local_tools?: unknown } | null)?.local_tools;
    return Array.isArray(tools) ? tools.map(String) : undefined;
  } catch {
    return undefined; // unreadable: the plan's config step reports it
  }
}

/** One sentence for the plan and the result: what the grant means, plainly. */
export function describeGrant(grant: ToolGrant, tenant: string): string {
  const any = runsAnyCommand(grant.granted);
  if (grant.granted.length === 0) {
    const offered = grant.detected.length ? ` (on PATH: ${grant.detected.join(", ")})` : "";
    return `none granted${offered}; grant with --local-tools or in local_tools`;
  }
  const list = grant.granted.join(", ");
  return any.length
    ? `${list}: this host will run ANY command for tenant ${tenant}'s operators (${
      any.join(", ")
    } ${any.length === 1 ? "runs" : "run"} arbitrary commands)`
    : `${list}: these programs, with any arguments`;
}
