// The host-aware config template, and merging it into a config a person already has.
import {
  type EdgeConfig,
  EdgeConfigSchema,
  renderEdgeConfig,
} from "../../shared/config/edge_config.ts";
import type { HostFacts } from "./inspect.ts";

/** `localTools` is the deliberate grant; what PATH offers (facts) is only a suggestion. */
export function configTemplate(
  facts: HostFacts,
  endpoints: string[],
  name?: string,
  localTools: string[] = [],
): EdgeConfig {
  return EdgeConfigSchema.parse({
    node: { name: name || undefined, labels: { host: facts.hostname.split(".")[0] } },
    cluster: { role: "edge", endpoints },
    edge: { heartbeat_interval_secs: 30 },
    local_tools: localTools,
    mount_points: facts.mountPoints,
    secrets: { backend: "file" },
  });
}

/** Existing values win; the template only fills what the existing config lacks. */
export function mergeConfig(existing: Record<string, unknown>, template: EdgeConfig): EdgeConfig {
  return EdgeConfigSchema.parse(
    deepMerge(template as unknown as Record<string, unknown>, existing),
  );
}

export function renderConfig(config: EdgeConfig, facts: HostFacts): string {
  const offered = facts.localTools.filter((t) => !config.local_tools.includes(t));
  const header = [
    `# AEGIS edge daemon config for ${facts.hostname} (${facts.os}/${facts.arch}).`,
    "# local_tools: programs this host runs for the tenant's operators, named bare; anything else",
    '#   is refused. WARNING: "shell", an interpreter (python, node, perl, ruby), git, find,',
    "#   docker/podman, kubectl, systemctl, terraform, ansible, pip, ldd … each let the caller run",
    "#   ANY command as this user: listing one is the same as listing shell.",
    ...(offered.length ? [`#   Found on PATH, not granted: ${offered.join(", ")}.`] : []),
    "# mount_points: directories tool calls may use as their working directory (never",
    "#   ~/.aegis/edge, which calls cannot use even when a mount point contains it).",
    "# edge.env_allow: variables a call may set (NAME or PREFIX*). Never add ones that load code",
    "#   (LD_*, BASH_FUNC_*, PERL5OPT, NODE_OPTIONS, PYTHON*, GIT_CONFIG_*, GCONV_PATH, PS4, …).",
    "# edge.secret_env: variables a call may fill from the secrets store (secret://NAME).",
    "# edge.sandbox: best-effort | required | off. With bubblewrap (Linux), calls run with",
    "#   ~/.aegis/edge hidden and in their own pid namespace; required refuses calls without it.",
    "# edge.keepalive_interval_secs / keepalive_timeout_secs: a PING after that long without a",
    "#   byte from the controller; unanswered in the timeout, the path is dead and we reconnect.",
    "# edge.reconnect_base_ms / reconnect_cap_secs: reconnects wait a random delay up to",
    "#   min(cap, base·2^failures) (at most 60 s), and never give up.",
    "",
  ].join("\n");
  return renderEdgeConfig(config, header);
}

function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
