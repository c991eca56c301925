// Which variables a call may put in a command's environment. An allowlist, not a blocklist: the
// list of variables that make some program load code (LD_*, BASH_FUNC_*, PERL5OPT, NODE_OPTIONS,
// GIT_CONFIG_*, GCONV_PATH, PYTHONWARNINGS + BROWSER, SHELLOPTS + PS4, …) has no end, so the host
// names what it accepts (edge.env_allow) and everything else is refused by name.
import type { EdgeConfig } from "../../shared/config/edge_config.ts";
import { ToolRefusal } from "./refusal.ts";

const CONFIG_FILE = "~/.aegis/edge/aegis-config.yaml";
export const SECRET_PREFIX = "secret://";

/**
 * Literal values go only into names edge.env_allow matches; `secret://` values only into names
 * edge.secret_env matches. Keeping the two apart means a secret never lands in a variable that a
 * listed program echoes back or acts on (a locale name, PYTHONWARNINGS, a git config value): the
 * host decides where each kind of value may go, the caller only picks among those names.
 * Applies with "shell" too: the host's list is one rule, whatever else is granted.
 */
export function checkEnvAllowed(config: EdgeConfig, env: Record<string, string> | undefined) {
  for (const [name, value] of Object.entries(env ?? {})) {
    if (value.startsWith(SECRET_PREFIX)) {
      if (!matchesAny(config.edge.secret_env, name)) {
        throw refused(
          `a secret may not be placed in ${name}`,
          `add "${name}" to edge.secret_env`,
        );
      }
    } else if (!matchesAny(config.edge.env_allow, name)) {
      throw refused(
        `setting ${name} is not allowed on this host`,
        `add "${name}" to edge.env_allow`,
      );
    }
  }
}

function refused(what: string, fix: string): ToolRefusal {
  return new ToolRefusal(
    "ENV_NOT_ALLOWED",
    `${what}: ${fix} in ${CONFIG_FILE} if this host accepts it (variables that load code make any listed tool a shell)`,
  );
}

/** `NAME` matches itself only; `PREFIX*` matches PREFIX followed by letters, digits or _. */
export function matchesAny(patterns: readonly string[], name: string): boolean {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return false;
  return patterns.some((pattern) =>
    pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern
  );
}

/** Read by the dynamic loader and libc of the sandbox launcher itself, before it hides anything. */
const LAUNCHER_VARIABLES = /^(LD_.*|GCONV_PATH|GLIBC_TUNABLES|LOCPATH|MALLOC_.*)$/;

/**
 * The sandbox launcher runs with the command's environment; a variable that makes it load code
 * would run that code outside the sandbox. Refused even when edge.env_allow lists it.
 */
export function checkLauncherEnv(env: Record<string, string> | undefined): void {
  const name = Object.keys(env ?? {}).find((n) => LAUNCHER_VARIABLES.test(n));
  if (name) {
    throw new ToolRefusal(
      "ENV_NOT_ALLOWED",
      `setting ${name} is not allowed while calls run sandboxed: it would load code into the sandbox launcher (edge.sandbox: off lifts this, and the protection with it)`,
    );
  }
}
