// The enrolled identity on disk: node.key, node.token, and the config they belong to.
import { AegisError } from "../../shared/errors.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { decodeNodeToken, type NodeClaims } from "../../shared/tokens/claims.ts";
import { type EdgeConfig, parseEdgeConfig } from "../../shared/config/edge_config.ts";
import { readTextIfExists } from "../../shared/fs/atomic.ts";
import { type Endpoint, parseEndpoint } from "../../shared/endpoint.ts";
import type { EdgePaths } from "./paths.ts";
import { completePendingRotation } from "../keys/swap.ts";

export interface Identity {
  key: NodePrivateKey;
  token: string;
  claims: NodeClaims;
  config: EdgeConfig;
  endpoints: Endpoint[];
  fingerprint: string;
}

export async function loadIdentity(paths: EdgePaths): Promise<Identity> {
  // A rotation a crash interrupted after its token was saved is finished before anything else.
  await completePendingRotation(paths);
  const [keyPem, token, configText] = await Promise.all([
    readTextIfExists(paths.key),
    readTextIfExists(paths.nodeToken),
    readTextIfExists(paths.config),
  ]);
  if (keyPem === undefined || token === undefined) {
    throw new AegisError(
      "NOT_ENROLLED",
      `this host is not enrolled (no ${
        keyPem === undefined ? "node.key" : "node.token"
      } in ${paths.dir})`,
    );
  }
  const key = NodePrivateKey.fromPem(keyPem);
  const claims = decodeNodeToken(token);
  const fingerprint = await key.publicKey.fingerprint();
  if (claims.cnf.kfp !== fingerprint) {
    throw new AegisError(
      "KEY_TOKEN_MISMATCH",
      `node.token (node ${claims.sub}) is bound to key ${claims.cnf.kfp}, but node.key is ${fingerprint}`,
    );
  }
  const config = parseEdgeConfig(configText ?? "", paths.config);
  if (config.cluster.endpoints.length === 0) {
    throw new AegisError("CONFIG_INVALID", `${paths.config} names no cluster.endpoints`, {
      hint: "Re-run `aegis edge enroll <token> --keep-existing` to restore it.",
    });
  }
  return {
    key,
    token: token.trim(),
    claims,
    config,
    endpoints: config.cluster.endpoints.map(parseEndpoint),
    fingerprint,
  };
}
