// Approved patterns: trusted-enrollment rules operators add and remove at run time (`aegis edge
// approved add|list|remove`), kept in the database so every controller sharing it applies a
// change at the next enrollment. Each belongs to a tenant: an operator sees and changes only
// the patterns of tenants their token grants, and a matching host enrolls into that tenant.
import type { ApprovedPattern } from "../../shared/approved_pattern.ts";
import { AegisError } from "../../shared/errors.ts";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import type { Queryable } from "../store/db.ts";
import { type Operator, requireWriter, resolveTenant, tenantsOf } from "./operators.ts";
import { HostnameGlob } from "./hostname_glob.ts";
import { Cidr } from "./cidr.ts";
import type { RuleSource, TrustRule } from "./trusted_enrollment.ts";

/** Per tenant: every enrollment reads them all, so the table stays small. */
export const MAX_APPROVED_PER_TENANT = 256;
/**
 * Across tenants, what one enrollment reads at most. Adds stop at it, and a read finding more
 * (racing adds) refuses rather than skip some: a skipped pattern could leave another tenant's
 * overlapping one deciding alone (see TrustedEnrollment.decide).
 */
export const MAX_APPROVED_READ = 4096;
export const MAX_CIDRS_PER_PATTERN = 64;

export type { ApprovedPattern };

interface Row {
  id: string;
  tenant_id: string;
  pattern: string;
  cidrs: string[];
  created_by: string;
  created_at: Date;
}

export class ApprovedPatterns implements RuleSource {
  /**
   * Compiled rules by row (id, pattern and networks): rows are only ever added and removed, so
   * each is parsed once, not on every tokenless attempt (up to 4096 x 64 CIDRs, most of a
   * second of the controller's one thread, at the cost of one attestation).
   */
  #compiled = new Map<string, TrustRule>();

  constructor(private readonly db: Queryable) {}

  async add(
    operator: Operator,
    input: { pattern: string; cidrs: string[]; tenant_id?: string },
  ): Promise<ApprovedPattern> {
    requireWriter(operator, "approve enrollment patterns");
    const tenant = resolveTenant(operator, input.tenant_id);
    const glob = HostnameGlob.parse(input.pattern, "pattern");
    if (input.cidrs.length === 0 || input.cidrs.length > MAX_CIDRS_PER_PATTERN) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `give 1 to ${MAX_CIDRS_PER_PATTERN} source networks (--cidr)`,
        { hint: "The network is the real check: the hostname is only the host's claim." },
      );
    }
    const cidrs = input.cidrs.map((c, i) => Cidr.parse(c, `cidrs[${i}]`).text);
    const [{ n, total }] = await this.db.query<{ n: number; total: number }>(
      `SELECT count(*) FILTER (WHERE tenant_id = $1)::int AS n, count(*)::int AS total
         FROM approved_patterns`,
      [tenant],
    );
    if (total >= MAX_APPROVED_READ) {
      throw new AegisError(
        "CONFLICT",
        `the controller already holds ${total} approved patterns across tenants (the most ` +
          "trusted enrollment reads)",
        { hint: "Ask the controller's administrator; unused patterns can be removed." },
      );
    }
    if (n >= MAX_APPROVED_PER_TENANT) {
      throw new AegisError(
        "CONFLICT",
        `tenant ${tenant} already has ${n} approved patterns (the most it may have)`,
        { hint: "Remove unused ones: `aegis edge approved list`, then `remove <id>`." },
      );
    }
    const id = "ap-" + [...randomBytes(6)].map((b) => b.toString(16).padStart(2, "0")).join("");
    const rows = await this.db.query<Row>(
      `INSERT INTO approved_patterns (id, tenant_id, pattern, cidrs, created_by)
       VALUES ($1, $2, $3, $4::text[], $5) RETURNING *`,
      [id, tenant, glob.pattern, cidrs, operator.sub],
    );
    return view(rows[0]);
  }

  async list(operator: Operator, tenant?: string): Promise<ApprovedPattern[]> {
    const tenants = tenant ? [resolveTenant(operator, tenant)] : tenantsOf(operator);
    const rows = await this.db.query<Row>(
      `SELECT * FROM approved_patterns WHERE tenant_id = ANY($1::text[])
        ORDER BY created_at, id`,
      [tenants],
    );
    return rows.map(view);
  }

  async remove(operator: Operator, id: string): Promise<ApprovedPattern> {
    requireWriter(operator, "remove approved enrollment patterns");
    const rows = await this.db.query<Row>(
      `DELETE FROM approved_patterns WHERE id = $1 AND tenant_id = ANY($2::text[]) RETURNING *`,
      [id, tenantsOf(operator)],
    );
    if (!rows[0]) {
      throw new AegisError(
        "NOT_FOUND",
        `no approved pattern ${JSON.stringify(id)} in your tenants`,
        {
          hint: "List them with `aegis edge approved list`.",
        },
      );
    }
    return view(rows[0]);
  }

  /** Every tenant's patterns as rules, oldest first (rows were validated when added). */
  async rules(): Promise<TrustRule[]> {
    const rows = await this.db.query<Row>(
      `SELECT * FROM approved_patterns ORDER BY created_at, id LIMIT ${MAX_APPROVED_READ + 1}`,
    );
    if (rows.length > MAX_APPROVED_READ) {
      throw new AegisError(
        "ENROLL_NOT_TRUSTED",
        `the controller holds more than ${MAX_APPROVED_READ} approved patterns; trusted ` +
          "enrollment by approved pattern is refused until some are removed",
        { details: { failed_check: "rules" } },
      );
    }
    const compiled = new Map<string, TrustRule>();
    for (const row of rows) {
      const key = JSON.stringify([row.id, row.tenant_id, row.pattern, row.cidrs]);
      compiled.set(key, this.#compiled.get(key) ?? compile(row));
    }
    // Only rows still stored stay: the map never outgrows one read.
    this.#compiled = compiled;
    return [...compiled.values()];
  }
}

function compile(row: Row): TrustRule {
  return {
    glob: HostnameGlob.parse(row.pattern, `approved pattern ${row.id}`),
    cidrs: row.cidrs.map((c) => Cidr.parse(c, `approved pattern ${row.id}`)),
    tenant: row.tenant_id,
    source: `approved pattern ${row.id}`,
  };
}

function view(row: Row): ApprovedPattern {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    pattern: row.pattern,
    cidrs: row.cidrs,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
  };
}
