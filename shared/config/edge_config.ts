// The host's own config, ~/.aegis/edge/aegis-config.yaml: what the daemon offers and how it
// behaves. Written by `aegis edge enroll` from a host-aware template; edited by people.
import { z } from "zod";
import { stringify } from "yaml";
import { parseYamlConfig } from "./yaml_config.ts";

/**
 * Variables a call may set by default: locale, time zone and terminal only. None of them names
 * code to load (unlike LD_*, BASH_FUNC_*, PERL5OPT, NODE_OPTIONS, GIT_CONFIG_*, GCONV_PATH …).
 */
export const DEFAULT_ENV_ALLOW = ["LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "NO_COLOR", "COLUMNS"];

/** An env_allow / secret_env entry: a variable name, or a name prefix ending in `*`. */
const EnvPattern = z.string().regex(
  /^[A-Za-z_][A-Za-z0-9_]{0,127}\*?$/,
  "a variable name (letters, digits, _), optionally ending in * to match a prefix",
);

export const SANDBOX_MODES = ["best-effort", "required", "off"] as const;
export type SandboxMode = typeof SANDBOX_MODES[number];

export const EdgeConfigSchema = z.object({
  node: z.object({
    name: z.string().min(1).max(128).optional(),
    labels: z.record(
      z.string().regex(/^[A-Za-z0-9_.\/-]{1,63}$/, "label keys use letters, digits, _ . / -"),
      z.string().max(256),
    )
      .default({}),
  }).strict().default({ labels: {} }),
  cluster: z.object({
    role: z.literal("edge").default("edge"),
    /** Filled in from the enrollment token's `cep`; several may be listed for failover. */
    endpoints: z.array(z.string().min(1)).default([]),
  }).strict().default({ role: "edge", endpoints: [] }),
  edge: z.object({
    heartbeat_interval_secs: z.number().int().min(1).max(3600).default(30),
    token_refresh_margin_secs: z.number().int().min(10).default(3600),
    max_concurrent_calls: z.number().int().min(1).max(1024).default(4),
    ca_file: z.string().optional(),
    /** Names a call may set in a command's environment (literal values). */
    env_allow: z.array(EnvPattern).max(256).default(DEFAULT_ENV_ALLOW),
    /** Names a call may fill from this host's secrets store (`secret://NAME` values). */
    secret_env: z.array(EnvPattern).max(256).default([]),
    /** Run each command with the state directory hidden (bubblewrap on Linux). */
    sandbox: z.enum(SANDBOX_MODES).default("best-effort"),
    /** A PING goes out after this long without a byte from the controller (LBs cut at ~60 s). */
    keepalive_interval_secs: z.number().int().min(1).max(300).default(20),
    /** A PING unanswered this long means the path is dead: the stream ends and reconnects. */
    keepalive_timeout_secs: z.number().int().min(1).max(120).default(10),
    /** Reconnects wait a full-jitter delay in [0, min(cap, base·2^failures)]; never give up. */
    reconnect_base_ms: z.number().int().min(1).max(60_000).default(1000),
    reconnect_cap_secs: z.number().int().min(1).max(60).default(60),
  }).strict().default({
    heartbeat_interval_secs: 30,
    token_refresh_margin_secs: 3600,
    max_concurrent_calls: 4,
    env_allow: DEFAULT_ENV_ALLOW,
    secret_env: [],
    sandbox: "best-effort",
    keepalive_interval_secs: 20,
    keepalive_timeout_secs: 10,
    reconnect_base_ms: 1000,
    reconnect_cap_secs: 60,
  }),
  local_tools: z.array(z.string().min(1)).default([]),
  mount_points: z.array(z.string().min(1)).default([]),
  secrets: z.object({
    backend: z.enum(["file", "openbao"]).default("file"),
  }).strict().default({ backend: "file" }),
}).strict();

export type EdgeConfig = z.infer<typeof EdgeConfigSchema>;

export function parseEdgeConfig(text: string, source = "aegis-config.yaml"): EdgeConfig {
  return parseYamlConfig(text, source, EdgeConfigSchema);
}

export function renderEdgeConfig(config: EdgeConfig, header = ""): string {
  return header + stringify(config, { lineWidth: 0 });
}
