// `aegis edge enroll --trusted --endpoint URL`: enrollment without a token. The controller's
// trusted-enrollment rules decide, from this host's hostname and its source address, whether it
// may enroll and into which tenant; the plan and its output stand in for the token's claims.
import { AegisError } from "../../shared/errors.ts";
import { parseEndpointList } from "../../shared/endpoint.ts";
import { AUDIENCE, type EnrollmentClaims } from "../../shared/tokens/claims.ts";

/** Shown where a token would name the tenant. */
export const TRUSTED_TENANT = "(chosen by the controller's trusted-enrollment rules)";

export function trustedClaims(
  options: { endpoint?: string; tokenArg?: string; tokenFile?: string },
): EnrollmentClaims {
  if (options.tokenArg || options.tokenFile) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      "--trusted enrolls without a token; pass one or the other",
    );
  }
  if (!options.endpoint) {
    throw new AegisError("INVALID_ARGUMENT", "--trusted needs --endpoint URL (the controller)", {
      hint: "e.g. `aegis edge enroll --trusted --endpoint https://edge.example.com`",
    });
  }
  parseEndpointList(options.endpoint); // a typo fails before the network
  return {
    iss: "",
    aud: AUDIENCE.enrollment,
    jti: "",
    iat: 0,
    exp: 0,
    cep: options.endpoint,
    tenant_id: TRUSTED_TENANT,
    name: "",
  };
}
