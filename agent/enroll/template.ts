// The host-aware config template, and merging it into a config a person already has.
import {
  type EdgeConfig,
  EdgeConfigSchema,
  renderEdgeConfig,
} from "../../shared/config/edge_config.ts";
import type { HostFacts } from "./inspect.ts";

export function configTemplate(facts: HostFacts, endpoints: string[], name?: string): EdgeConfig {
  return EdgeConfigSchema.parse({
    node: { name: name || undefined, labels: { host: facts.hostname.split(".")[0] } },
    cluster: { role: "edge", endpoints },
    edge: { heartbeat_interval_secs: 30 },
    local_tools: facts.localTools,
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
  const header = [
    `# AEGIS edge daemon config for ${facts.hostname} (${facts.os}/${facts.arch}).`,
    "# local_tools: tools this host runs for the controller; anything else is refused.",
    "# mount_points: directories tool calls may use as their working directory.",
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
