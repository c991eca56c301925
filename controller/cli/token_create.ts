// `aegis-controller token create`: mint an operator JWT with the controller's signing key, or
// (--login) a one-time web console login link. It reads only the key file, never the database,
// so it works while the controller runs; the controller spends a link when it is used.
import { hostname } from "node:os";
import { type ControllerConfig, loadControllerConfig } from "../config.ts";
import { publicBootstrapUrl } from "../app/releases.ts";
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
  ttl?: string;
  login?: boolean;
  url?: string;
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
  const claims = {
    subject: options.subject ?? `cli:${options.role}`,
    tenantId: options.tenant,
    role: options.role as OperatorRole,
    tenants: options.tenants?.split(",").map((t) => t.trim()).filter(Boolean),
    ttlSecs: Math.round(
      parseDuration(options.ttl ?? (options.login ? "15m" : "24h"), "--ttl") / 1000,
    ),
  };
  if (!options.login) {
    io.out(await tokens.issueOperator(claims) + "\n");
    return 0;
  }
  const base = consoleBaseUrl(config, options.url);
  const { token, expiresAt } = await tokens.issueLoginLink(claims);
  io.out(`${base}/console/login?link=${token}\n`);
  io.err(
    `One-time login link for ${claims.subject} (${claims.role} on ${
      [claims.tenantId, ...(claims.tenants ?? [])].join(", ")
    }); it signs in once, until ${expiresAt.toISOString()}.\n`,
  );
  return 0;
}

/** --url, else where the controller says it is reached: bootstrap.public_url or its endpoint. */
function consoleBaseUrl(config: ControllerConfig, url: string | undefined): string {
  if (url) {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
      throw new AegisError("INVALID_ARGUMENT", `--url "${url}" is not an http(s) URL`);
    }
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`;
  }
  const port = config.cluster.cluster_grpc_port;
  const endpoint = config.cluster.ingress.public_endpoint ??
    (config.cluster.tls ? `${hostname()}:${port}` : `http://127.0.0.1:${port}`);
  return publicBootstrapUrl(config, endpoint);
}
