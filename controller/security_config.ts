// The `security:` section of aegis-config.yaml: the security contexts work runs under (which edge
// tools, how many executions a minute and a day, how long, how many at once, how long the audit
// log keeps a record), which context each consumer tier maps to, and per-tenant and per-user
// limit overrides. Every key has the seed's default, so the section may be left out entirely.
import { z } from "zod";
import { EDGE_TOOL_NAMES, EDGE_TOOLS, type EdgeToolName } from "./app/edge_tools.ts";
import { OPERATOR_CONTEXT } from "./app/identity.ts";

/** A limit that may be switched off: null means "no limit". */
const Limit = z.number().int().min(0).max(1_000_000_000).nullable();

export const LimitsOverrideSchema = z.object({
  executions_per_minute: Limit.optional(),
  executions_per_day: Limit.optional(),
  max_timeout_secs: z.number().int().min(1).max(30 * 86400).optional(),
  /** Tool calls and fleet operations running at once (a conversation's task does not count). */
  max_concurrent: Limit.optional(),
  audit_retention_days: z.number().int().min(1).max(3650).optional(),
}).strict();
export type LimitsOverride = z.infer<typeof LimitsOverrideSchema>;

export interface ContextLimits {
  executions_per_minute: number | null;
  executions_per_day: number | null;
  max_timeout_secs: number;
  max_concurrent: number | null;
  audit_retention_days: number;
}

export interface SecurityContextDefinition extends ContextLimits {
  tools: EdgeToolName[];
}

const ToolName = z.string().refine((name) => Object.hasOwn(EDGE_TOOLS, name), {
  message: `not an edge tool (known: ${EDGE_TOOL_NAMES.join(", ")})`,
}).transform((name) => name as EdgeToolName);

const ContextSchema = LimitsOverrideSchema.extend({
  tools: z.array(ToolName).max(EDGE_TOOL_NAMES.length).optional(),
}).strict();

/** What a consumer's context holds: everything but operator-only tools. */
const CONSUMER_TOOLS = EDGE_TOOL_NAMES.filter((name) => !EDGE_TOOLS[name].operatorOnly);
/** Free lacks one tool the paid tiers have, as the seed's Free lacks one. */
const FREE_TOOLS = CONSUMER_TOOLS.filter((name) => name !== "aegis.edge.enrollment_token.issue");

const MIN = 60;
const HOUR = 3600;

/** Seed 002's tiers, for the edge. */
export const DEFAULT_CONTEXTS: Record<string, SecurityContextDefinition> = {
  "zaru-free": {
    tools: FREE_TOOLS,
    executions_per_minute: 3,
    executions_per_day: 20,
    max_timeout_secs: 5 * MIN,
    max_concurrent: 1,
    audit_retention_days: 7,
  },
  "zaru-pro": {
    tools: CONSUMER_TOOLS,
    executions_per_minute: 10,
    executions_per_day: 200,
    max_timeout_secs: 30 * MIN,
    max_concurrent: 5,
    audit_retention_days: 30,
  },
  "zaru-business": {
    tools: CONSUMER_TOOLS,
    executions_per_minute: 30,
    executions_per_day: 1_000,
    max_timeout_secs: 4 * HOUR,
    max_concurrent: 50,
    audit_retention_days: 90,
  },
  "zaru-enterprise": {
    tools: CONSUMER_TOOLS,
    executions_per_minute: 100,
    executions_per_day: 10_000,
    max_timeout_secs: 24 * HOUR,
    max_concurrent: null,
    audit_retention_days: 365,
  },
  [OPERATOR_CONTEXT]: {
    tools: EDGE_TOOL_NAMES,
    executions_per_minute: null,
    executions_per_day: null,
    max_timeout_secs: 24 * HOUR,
    max_concurrent: null,
    audit_retention_days: 365,
  },
};

export const DEFAULT_TIERS: Record<string, string> = {
  Free: "zaru-free",
  Pro: "zaru-pro",
  Business: "zaru-business",
  Enterprise: "zaru-enterprise",
};

const ContextName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
  message: "a context name is lowercase letters, digits and dashes",
});

export const SecuritySchema = z.object({
  /** Changes to the default contexts (merged key by key) and contexts of your own. */
  contexts: z.record(ContextName, ContextSchema).default({}),
  /** A consumer token's tier claim value → the context its work runs under. */
  tiers: z.record(z.string().min(1).max(64), ContextName).default(DEFAULT_TIERS),
  /** Limits for one tenant, whatever context its callers run under. */
  tenants: z.record(z.string().min(1).max(128), LimitsOverrideSchema).default({}),
  /** Limits for one identity (its `sub`); these win over the tenant's. */
  users: z.record(z.string().min(1).max(256), LimitsOverrideSchema).default({}),
}).strict().transform((security, ctx) => {
  const contexts: Record<string, SecurityContextDefinition> = {};
  for (const [name, definition] of Object.entries(DEFAULT_CONTEXTS)) {
    contexts[name] = { ...definition, tools: [...definition.tools] };
  }
  // Own keys only: a name such as "constructor" must not find what every object inherits.
  const known = (name: string) => Object.hasOwn(contexts, name) ? contexts[name] : undefined;
  for (const [name, change] of Object.entries(security.contexts)) {
    const base = known(name);
    if (!base && !change.tools) {
      ctx.addIssue({
        code: "custom",
        path: ["contexts", name],
        message: `context "${name}" is new: list its tools`,
      });
      continue;
    }
    const merged = { ...(base ?? DEFAULT_CONTEXTS["zaru-free"]), ...dropUndefined(change) };
    contexts[name] = merged as SecurityContextDefinition;
  }
  // Tiers are looked up without case (providers differ: "PRO", "pro"), so two that differ only
  // in case would leave which context applies to the order of the keys.
  const tierNames = new Map<string, string>();
  for (const [tier, name] of Object.entries(security.tiers)) {
    const first = tierNames.get(tier.toLowerCase());
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["tiers", tier],
        message: `tier "${tier}" is tier "${first}" again: tiers are matched without case`,
      });
    }
    tierNames.set(tier.toLowerCase(), first ?? tier);
    const context = known(name);
    if (!context) {
      ctx.addIssue({
        code: "custom",
        path: ["tiers", tier],
        message: `tier "${tier}" maps to an unknown context "${name}"`,
      });
      continue;
    }
    if (name === OPERATOR_CONTEXT) {
      ctx.addIssue({
        code: "custom",
        path: ["tiers", tier],
        message: `a consumer tier cannot run under the operator context "${OPERATOR_CONTEXT}"`,
      });
    }
    const operatorOnly = context.tools.filter((tool) => EDGE_TOOLS[tool].operatorOnly);
    if (operatorOnly.length) {
      ctx.addIssue({
        code: "custom",
        path: ["contexts", name, "tools"],
        message: `context "${name}" serves consumer tier "${tier}" and so cannot hold ` +
          `operator-only tools: ${operatorOnly.join(", ")}`,
      });
    }
  }
  return { contexts, tiers: security.tiers, tenants: security.tenants, users: security.users };
});
export type SecurityConfig = z.output<typeof SecuritySchema>;

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<
    T
  >;
}
