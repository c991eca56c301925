// Token-free enrollment (seed 004's trusted enrollment). A host may enroll without a token when
// one rule's hostname glob matches the hostname it attested AND every source address it used
// (the attestation's and the ChallengeNode call's, each after cluster.ingress.trusted_proxies)
// lies in one of that rule's CIDRs. The hostname is the host's own claim and anyone can claim
// any name: the CIDR is the check that holds, the glob only narrows which hosts in a trusted
// network a rule admits. Rules come from bootstrap.trusted_enrollment in the config (checked at
// start-up) and from the approved patterns operators keep in the database (read on every
// enrollment, so a change holds at once on every controller sharing the database). The first
// config rule that matches wins (file order); failing that, approved patterns decide only when
// every one admitting the host belongs to one tenant (then its oldest is named).
import { AegisError } from "../../shared/errors.ts";
import type { TrustedEnrollmentRule } from "../config.ts";
import { HostnameGlob } from "./hostname_glob.ts";
import { Cidr } from "./cidr.ts";

export interface TrustRule {
  glob: HostnameGlob;
  cidrs: Cidr[];
  tenant: string;
  /** For the audit record: "config rule 2" or "approved pattern <id>". */
  source: string;
}

export interface TrustDecision {
  tenant: string;
  source: string;
}

/** The rules a source of approved patterns currently holds. */
export interface RuleSource {
  rules(): Promise<TrustRule[]>;
}

/** Compiles bootstrap.trusted_enrollment; a bad pattern or CIDR fails start-up (CONFIG_INVALID). */
export function compileConfigRules(rules: readonly TrustedEnrollmentRule[]): TrustRule[] {
  return rules.map((rule, i) => {
    const where = `bootstrap.trusted_enrollment[${i}]`;
    return {
      glob: HostnameGlob.parse(rule.pattern, `${where}.pattern`, "CONFIG_INVALID"),
      cidrs: rule.cidrs.map((c, j) => Cidr.parse(c, `${where}.cidrs[${j}]`, "CONFIG_INVALID")),
      tenant: rule.tenant,
      source: `config rule ${i}`,
    };
  });
}

export class TrustedEnrollment {
  constructor(
    private readonly configRules: readonly TrustRule[],
    private readonly approved?: RuleSource,
  ) {}

  /**
   * The rule admitting this host, or ENROLL_NOT_TRUSTED saying which check failed (the
   * hostname, or the address) and naming only what the host itself sent, never a rule.
   */
  async decide(hostname: string, addresses: readonly string[]): Promise<TrustDecision> {
    const admits = (rule: TrustRule) =>
      addresses.every((address) => rule.cidrs.some((cidr) => cidr.contains(address)));
    // Config rules are the controller owner's word: the first one admitting the host decides.
    const byConfig = this.configRules.find((rule) => rule.glob.matches(hostname) && admits(rule));
    if (byConfig) return { tenant: byConfig.tenant, source: byConfig.source };
    const approved = await this.approved?.rules() ?? [];
    const named = [...this.configRules, ...approved].filter((rule) => rule.glob.matches(hostname));
    if (named.length === 0) {
      throw new AegisError(
        "ENROLL_NOT_TRUSTED",
        `the hostname ${JSON.stringify(hostname)} matches no trusted-enrollment pattern`,
        { details: { failed_check: "hostname" } },
      );
    }
    const admitted = approved.filter((rule) => rule.glob.matches(hostname) && admits(rule));
    if (admitted.length === 0) {
      throw new AegisError(
        "ENROLL_NOT_TRUSTED",
        `the source address ${
          [...new Set(addresses)].join(", ")
        } is not in a network trusted for ` +
          `hostname ${JSON.stringify(hostname)} (as seen after the controller's trusted proxies)`,
        { details: { failed_check: "source_address" } },
      );
    }
    // Approved patterns belong to tenants, and any tenant's writer may add one as broad as "*"
    // from 0.0.0.0/0. Were the oldest to win across tenants, such a pattern would capture the
    // hosts another tenant's pattern admits (security review of issue 11): when patterns of
    // two tenants admit the host, nothing decides for it. The host is not told which.
    if (new Set(admitted.map((rule) => rule.tenant)).size > 1) {
      throw new AegisError(
        "ENROLL_NOT_TRUSTED",
        `hostname ${JSON.stringify(hostname)} from ${[...new Set(addresses)].join(", ")} ` +
          "is admitted by approved patterns of more than one tenant, so none decides",
        { details: { failed_check: "ambiguous" } },
      );
    }
    return { tenant: admitted[0].tenant, source: admitted[0].source };
  }
}
