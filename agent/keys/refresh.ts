// `aegis edge token refresh`: re-attest with the existing key and get a fresh NodeSecurityToken;
// the controller blacklists the old one. The daemon runs the same steps by itself
// `token_refresh_margin_secs` before expiry.
import { hostname } from "node:os";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import { writeFileAtomic } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";
import { loadIdentity } from "../state/identity.ts";
import { callNode, createNodeClient } from "../client/node_client.ts";

export async function refreshToken(paths: EdgePaths): Promise<{ nodeId: string; expires: Date }> {
  const identity = await loadIdentity(paths);
  const endpoint = identity.endpoints[0];
  const client = await createNodeClient(endpoint, { caFile: identity.config.edge.ca_file });
  try {
    const key = identity.key;
    const challenge = await callNode(endpoint, () =>
      client.attestNode({
        role: NodeRole.EDGE,
        publicKey: key.publicKey.bytes,
        hostname: hostname(),
        os: Deno.build.os,
        arch: Deno.build.arch,
        clientTime: timestampFromDate(new Date()),
        nodeToken: identity.token,
      }));
    const response = await callNode(endpoint, () =>
      client.challengeNode({
        challengeId: challenge.challengeId,
        signature: key.sign(
          challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
        ),
        proof: { case: "nodeToken", value: identity.token },
      }));
    await writeFileAtomic(paths.nodeToken, response.nodeSecurityToken + "\n", { mode: 0o600 });
    return {
      nodeId: identity.claims.sub,
      expires: response.tokenExpiresAt ? timestampDate(response.tokenExpiresAt) : new Date(0),
    };
  } finally {
    client.close();
  }
}
