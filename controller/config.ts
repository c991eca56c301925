// The controller's aegis-config.yaml (the same file shape for a controller and a relay
// coordinator). Strings written as $NAME or ${NAME} are taken from the environment.
import { z } from "zod";
import { AegisError } from "../shared/errors.ts";
import { parseYamlConfig } from "../shared/config/yaml_config.ts";
import { DEFAULT_LIMITS, LimitsSchema } from "./server/limits.ts";
import { AuthSchema } from "./auth_config.ts";
import { SecuritySchema } from "./security_config.ts";

export const ROLES = ["controller", "relay-coordinator"] as const;
export type ControllerRole = typeof ROLES[number];

const ClusterSchema = z.object({
  enabled: z.boolean().default(true),
  role: z.enum(ROLES).default("controller"),
  cluster_grpc_port: z.number().int().min(0).max(65535).default(50056),
  bind_address: z.string().default("0.0.0.0"),
  /** A name for this process among several relays (defaults to hostname:port). */
  node_name: z.string().optional(),
  ingress: z.object({
    /** Advertised in enrollment tokens as `cep`: host:port (TLS) or http://host:port. */
    public_endpoint: z.string().optional(),
    /** Proxies (CIDRs) whose forwarding header names the real client. */
    trusted_proxies: z.array(z.string()).max(256).optional(),
    /**
     * The one header those proxies write. Only it is read: a proxy that writes one passes a
     * client's own copy of the other through untouched (Caddy, nginx and most load balancers
     * write X-Forwarded-For and leave Forwarded alone), and reading that would let the client
     * pick its address.
     */
    forwarded_header: z.enum(["x-forwarded-for", "forwarded"]).default("x-forwarded-for"),
  }).strict().default({ forwarded_header: "x-forwarded-for" }),
  tls: z.object({ cert_file: z.string(), key_file: z.string() }).strict().optional(),
  /**
   * Where peer relays reach this one for forwarded calls: host:port (TLS) or http://host:port.
   * Defaults to the bind address and port (the hostname when bound to all addresses).
   */
  peer_endpoint: z.string().optional(),
}).strict();

const EdgeSchema = z.object({
  enrollment_token_ttl_secs: z.number().int().min(30).max(7 * 86400).default(900),
  node_token_ttl_secs: z.number().int().min(60).default(86400),
  attest_rate_limit_per_min: z.number().int().min(1).default(5),
  heartbeat_interval_secs: z.number().int().min(1).default(30),
  /** How far a host clock may differ from ours before we call it skew rather than expiry. */
  clock_skew_leeway_secs: z.number().int().min(0).default(300),
  /** How long a live stream may keep using a replaced key or token (rotation, refresh). */
  key_overlap_secs: z.number().int().min(0).default(300),
}).strict();

/**
 * A host that may enroll without a token (seed 004's trusted enrollment): its hostname matches
 * `pattern` (a glob: `*` matches within one label, `**` is not special) and its source address,
 * after the trusted-proxy rules, lies in one of `cidrs`. The hostname is the host's own claim;
 * the CIDR is the real check.
 */
const TrustedEnrollmentRuleSchema = z.object({
  pattern: z.string().min(1).max(253),
  cidrs: z.array(z.string().min(1).max(64)).min(1).max(64),
  tenant: z.string().min(1).max(128),
}).strict();

/** What the controller serves without authentication at its bootstrap URL (issue 11). */
const BootstrapSchema = z.object({
  /**
   * The URL hosts reach this controller's bootstrap endpoints at (scheme, host, port, no path),
   * written into install.sh, install.ps1, the Homebrew formula and the install one-liners.
   * Defaults to https:// (http:// without cluster.tls) + cluster.ingress.public_endpoint.
   */
  public_url: z.string().url().max(2048).optional(),
  /** Directory of releases: <releases_dir>/<version>/ as `deno task build` writes it. */
  releases_dir: z.string().min(1).optional(),
  /** Serve this version instead of the highest one in releases_dir. */
  release_version: z.string().min(1).max(64).optional(),
  /** PEM of a private CA the install scripts trust for this controller (and hand to enroll). */
  ca_file: z.string().min(1).optional(),
  trusted_enrollment: z.array(TrustedEnrollmentRuleSchema).max(256).default([]),
}).strict();

export type TrustedEnrollmentRule = z.infer<typeof TrustedEnrollmentRuleSchema>;

export const ControllerConfigSchema = z.object({
  cluster: ClusterSchema.default(ClusterSchema.parse({})),
  postgres: z.object({ dsn: z.string().min(1).optional() }).strict().default({}),
  edge: EdgeSchema.default(EdgeSchema.parse({})),
  limits: LimitsSchema.default(DEFAULT_LIMITS),
  auth: AuthSchema.default(AuthSchema.parse({})),
  /** Security contexts, tier mapping and per-tenant/per-user limits (issue 14). */
  security: SecuritySchema.prefault({}),
  bootstrap: BootstrapSchema.default(BootstrapSchema.parse({})),
  keycloak: z.object({ endpoint: z.string() }).loose().optional(),
  openbao: z.object({ endpoint: z.string() }).loose().optional(),
  // Sections a full AEGIS node has; a relay ignores them.
}).loose();

export type ControllerConfig = z.infer<typeof ControllerConfigSchema>;

export function parseControllerConfig(
  text: string,
  source: string,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ControllerConfig {
  const config = parseYamlConfig(
    text,
    source,
    ControllerConfigSchema,
    (raw) => interpolateEnv(raw, env, source, []),
  );
  const role = env.AEGIS_ROLE;
  if (role) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new AegisError(
        "CONFIG_INVALID",
        `AEGIS_ROLE="${role}" is not one of ${ROLES.join(", ")}`,
      );
    }
    config.cluster.role = role as ControllerRole;
  }
  return config;
}

export async function loadControllerConfig(path: string): Promise<ControllerConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new AegisError(
      "CONFIG_INVALID",
      `cannot read config ${path}: ${(error as Error).message}`,
      {
        hint: "Pass --config with the path of an aegis-config.yaml.",
      },
    );
  }
  return parseControllerConfig(text, path);
}

function interpolateEnv(
  value: unknown,
  env: Record<string, string | undefined>,
  source: string,
  path: string[],
): unknown {
  if (typeof value === "string") {
    const match = value.match(/^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/);
    if (!match) return value;
    const name = match[1] ?? match[2];
    const resolved = env[name];
    if (resolved === undefined || resolved === "") {
      throw new AegisError(
        "CONFIG_INVALID",
        `${source}: ${path.join(".")} refers to $${name}, which is not set in the environment`,
      );
    }
    return resolved;
  }
  if (Array.isArray(value)) {
    return value.map((v, i) => interpolateEnv(v, env, source, [...path, String(i)]));
  }
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolateEnv(v, env, source, [...path, k])]),
    );
  }
  return value;
}
