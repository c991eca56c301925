// Security contexts as a caller meets them: which context a consumer tier maps to, what a context
// allows a given identity (its tools, narrowed by kind, role and writer rights; its limits,
// overridden per tenant and per user), and the ceiling rule: a child never runs under a broader
// context than its parent.
import { AegisError } from "../../shared/errors.ts";
import type {
  ContextLimits,
  LimitsOverride,
  SecurityConfig,
  SecurityContextDefinition,
} from "../security_config.ts";
import { SecuritySchema } from "../security_config.ts";
import { EDGE_TOOLS, type EdgeToolName } from "./edge_tools.ts";
import { asPrincipal, type Principal } from "./identity.ts";
import type { OperatorClaims } from "../../shared/tokens/claims.ts";

export interface ResolvedContext extends ContextLimits {
  name: string;
  tools: ReadonlySet<EdgeToolName>;
  /** Tools the context lists that this caller may not use, and why (for a clear refusal). */
  withheld?: ReadonlyMap<EdgeToolName, string>;
}

export class SecurityContexts {
  readonly #config: SecurityConfig;
  readonly #tiers = new Map<string, string>();

  constructor(config: SecurityConfig = SecuritySchema.parse({})) {
    this.#config = config;
    // Identity providers differ in case ("PRO", "pro"); a tier is matched without it.
    for (const [tier, name] of Object.entries(config.tiers)) {
      this.#tiers.set(tier.toLowerCase(), name);
    }
  }

  /** The context a consumer tier maps to, or undefined for a tier the config does not know. */
  contextForTier(tier: string): string | undefined {
    return this.#tiers.get(tier.toLowerCase());
  }

  has(name: string): boolean {
    return Object.hasOwn(this.#config.contexts, name);
  }

  /** Names of the configured contexts, for error messages and docs. */
  get names(): string[] {
    return Object.keys(this.#config.contexts);
  }

  /**
   * What `name` (the caller's own context when absent) allows this caller: its tools less those
   * the caller's kind, roles or writer rights rule out, and its limits with the tenant's and then
   * the user's overrides applied.
   */
  resolve(who: OperatorClaims | Principal, name?: string, tenantId?: string): ResolvedContext {
    const principal = asPrincipal(who);
    const contextName = name ?? principal.context;
    const definition = this.#definition(contextName);
    const tools = new Set<EdgeToolName>();
    const withheld = new Map<EdgeToolName, string>();
    for (const tool of definition.tools) {
      const traits = EDGE_TOOLS[tool];
      if (traits.operatorOnly && principal.kind !== "operator") {
        withheld.set(tool, "it is for operators only");
      } else if (traits.writes && principal.aegis_role === "readonly") {
        withheld.set(tool, "it changes things and your role is readonly");
      } else if ("role" in traits && traits.role && !principal.roles.includes(traits.role)) {
        withheld.set(tool, `it needs the role ${traits.role}`);
      } else {
        tools.add(tool);
      }
    }
    const limits = applyOverrides(
      definition,
      ownEntry(this.#config.tenants, tenantId ?? principal.tenant_id),
      ownEntry(this.#config.users, principal.sub),
    );
    return { name: contextName, tools, withheld, ...limits };
  }

  /** Refuses a tool the context does not hold, whether or not the caller guessed its name. */
  requireTool(context: ResolvedContext, tool: string): asserts tool is EdgeToolName {
    if ((context.tools as ReadonlySet<string>).has(tool)) return;
    const why = context.withheld?.get(tool as EdgeToolName);
    throw new AegisError(
      "FORBIDDEN",
      why
        ? `you cannot use ${tool}: ${why}`
        : `the tool ${tool} is not available in security context "${context.name}"`,
      { hint: "tools/list shows the tools your context allows." },
    );
  }

  #definition(name: string): SecurityContextDefinition {
    // Own keys only: "constructor" names no context, whatever every object inherits.
    const definition = Object.hasOwn(this.#config.contexts, name)
      ? this.#config.contexts[name]
      : undefined;
    if (!definition) {
      throw new AegisError("INVALID_ARGUMENT", `no security context is named "${name}"`, {
        hint: `Known contexts: ${this.names.join(", ")}.`,
      });
    }
    return definition;
  }
}

/**
 * The ceiling rule: `child` may not allow a tool `parent` does not, nor any limit above the
 * parent's (no limit counts as the highest). Throws naming what is broader.
 */
export function requireWithin(child: ResolvedContext, parent: ResolvedContext): void {
  const broader: string[] = [];
  const extra = [...child.tools].filter((tool) => !parent.tools.has(tool));
  if (extra.length) broader.push(`tools ${extra.join(", ")}`);
  for (
    const key of [
      "executions_per_minute",
      "executions_per_day",
      "max_timeout_secs",
      "max_concurrent",
    ] as const
  ) {
    if (exceeds(child[key], parent[key])) broader.push(key);
  }
  if (!broader.length) return;
  throw new AegisError(
    "CONTEXT_CEILING",
    `security context "${child.name}" is broader than "${parent.name}" (${broader.join("; ")}); ` +
      "a child never runs under a broader context than its parent",
  );
}

function exceeds(child: number | null, parent: number | null): boolean {
  if (parent === null) return false;
  return child === null || child > parent;
}

function applyOverrides(
  base: ContextLimits,
  ...overrides: (LimitsOverride | undefined)[]
): ContextLimits {
  const limits: ContextLimits = {
    executions_per_minute: base.executions_per_minute,
    executions_per_day: base.executions_per_day,
    max_timeout_secs: base.max_timeout_secs,
    max_concurrent: base.max_concurrent,
    audit_retention_days: base.audit_retention_days,
  };
  for (const override of overrides) {
    if (!override) continue;
    for (const [key, value] of Object.entries(override)) {
      if (value !== undefined) (limits as unknown as Record<string, unknown>)[key] = value;
    }
  }
  return limits;
}

/** A config entry keyed by a caller-chosen name, never one every object inherits. */
function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
