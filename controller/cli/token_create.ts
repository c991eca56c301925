// `aegis-controller token create`: mint an operator JWT with the controller's signing key.
// It reads only the key file, never the database, so it works while the controller runs.
import { loadControllerConfig } from "../config.ts";
import { loadSigningKey } from "../app/signing_key.ts";
import { TokenAuthority } from "../app/tokens.ts";
import { signingKeyPath } from "../server/controller.ts";
import { AegisError } from "../../shared/errors.ts";
import { parseDuration } from "../../shared/duration.ts";
import { OPERATOR_ROLES, type OperatorRole } from "../../shared/tokens/claims.ts";
import type { Io } from "../../shared/cli/io.ts";

export interface TokenCreateOptions {
  config: string;
  dataDir: string;
  tenant: string;
  role: string;
  subject?: string;
  tenants?: string;
  ttl: string;
}

export async function tokenCreate(options: TokenCreateOptions, io: Io): Promise<number> {
  if (!(OPERATOR_ROLES as readonly string[]).includes(options.role)) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `--role "${options.role}" is not one of ${OPERATOR_ROLES.join(", ")}`,
    );
  }
  const config = await loadControllerConfig(options.config);
  const key = await loadSigningKey(signingKeyPath(config, options.dataDir));
  const tokens = new TokenAuthority(key, config.auth.issuer ?? "aegis-controller");
  const token = await tokens.issueOperator({
    subject: options.subject ?? `cli:${options.role}`,
    tenantId: options.tenant,
    role: options.role as OperatorRole,
    tenants: options.tenants?.split(",").map((t) => t.trim()).filter(Boolean),
    ttlSecs: Math.round(parseDuration(options.ttl, "--ttl") / 1000),
  });
  io.out(token + "\n");
  return 0;
}
