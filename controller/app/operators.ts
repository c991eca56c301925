// Who may do what to which tenant. Operator identities come from verified JWTs; a personal
// tenant (u-<uuid>) and a team tenant are both plain tenant ids.
import { AegisError } from "../../shared/errors.ts";
import type { OperatorClaims, OperatorRole } from "../../shared/tokens/claims.ts";

export type Operator = OperatorClaims;

const WRITERS: readonly OperatorRole[] = ["admin", "operator"];

export function tenantsOf(operator: Operator): string[] {
  return [operator.tenant_id, ...operator.tenants.filter((t) => t !== operator.tenant_id)];
}

/** Resolves the tenant a request acts on, defaulting to the operator's own. */
export function resolveTenant(operator: Operator, requested?: string): string {
  const tenant = requested ?? operator.tenant_id;
  if (!tenantsOf(operator).includes(tenant)) {
    throw new AegisError("FORBIDDEN", `you have no rights on tenant "${tenant}"`, {
      hint: `Your token grants: ${tenantsOf(operator).join(", ")}.`,
    });
  }
  return tenant;
}

export function requireWriter(operator: Operator, action: string): void {
  if (!WRITERS.includes(operator.aegis_role)) {
    throw new AegisError(
      "FORBIDDEN",
      `role "${operator.aegis_role}" cannot ${action}; it needs role admin or operator`,
      { hint: "Ask a tenant admin for an operator token." },
    );
  }
}
