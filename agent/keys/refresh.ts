// `aegis edge token refresh`: re-attest with the existing key and get a fresh NodeSecurityToken;
// the controller blacklists the old one. The key is what proves the node (the challenge
// signature), so a refresh whose answer was lost can simply run again. The daemon runs the same
// steps by itself `token_refresh_margin_secs` before expiry, after expiry (within the server's
// refresh grace) and whenever its token is refused.
import { hostname } from "node:os";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import { writeFileAtomic } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";
import { loadIdentity } from "../state/identity.ts";
import { withCredentialLock } from "./lock.ts";
import { callViaStream, type StreamLink } from "./stream_link.ts";

/** `link`: the daemon's stream, when the controller asked for the refresh over it. */
export function refreshToken(
  paths: EdgePaths,
  link?: StreamLink,
): Promise<{ nodeId: string; expires: Date }> {
  return withCredentialLock(paths, async () => {
    const identity = await loadIdentity(paths);
    const key = identity.key;
    // Both steps on one endpoint: a challenge lives in the database, but one relay's is as good.
    const response = await callViaStream(
      link,
      identity.endpoints,
      { caFile: identity.config.edge.ca_file },
      async (client) => {
        const challenge = await client.attestNode({
          role: NodeRole.EDGE,
          publicKey: key.publicKey.bytes,
          hostname: hostname(),
          os: Deno.build.os,
          arch: Deno.build.arch,
          clientTime: timestampFromDate(new Date()),
          nodeToken: identity.token,
        });
        return await client.challengeNode({
          challengeId: challenge.challengeId,
          signature: key.sign(
            challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
          ),
          proof: { case: "nodeToken", value: identity.token },
        });
      },
    );
    await writeFileAtomic(paths.nodeToken, response.nodeSecurityToken + "\n", { mode: 0o600 });
    return {
      nodeId: identity.claims.sub,
      expires: response.tokenExpiresAt ? timestampDate(response.tokenExpiresAt) : new Date(0),
    };
  });
}
