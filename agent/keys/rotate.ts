// `aegis edge keys rotate`, the five steps: (1) a fresh key in a 0600 temp file, (2) the request
// signed by the old key (envelope: authority) and the new key (possession), (3) the
// RotateEdgeKey call, (4) the controller's single transaction, (5) the local swap. A failure
// before the controller commits leaves the old key in use; after it, the pending files let the
// next run (or the daemon) finish, so the host is never locked out.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AegisError } from "../../shared/errors.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import { rotationBytes } from "../../shared/crypto/signed_bytes.ts";
import { faultPoint } from "../../shared/faults.ts";
import { readTextIfExists, writeFileAtomic } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";
import { loadIdentity } from "../state/identity.ts";
import { callNode, createNodeClient } from "../client/node_client.ts";
import { sealUnary } from "../client/unary.ts";
import { swapIn } from "./swap.ts";

export interface RotationResult {
  nodeId: string;
  oldFingerprint: string;
  newFingerprint: string;
  tokenExpires: Date;
  resumed: boolean;
}

/** Refusals that prove the controller did not commit: the pending key can go. */
const NOT_COMMITTED = new Set(["SIGNATURE_INVALID", "INVALID_ARGUMENT", "CONFLICT", "REPLAYED"]);

export async function rotateKey(paths: EdgePaths, keepOldMs: number): Promise<RotationResult> {
  const identity = await loadIdentity(paths);
  const pendingPem = await readTextIfExists(paths.pendingKey);
  // An interrupted rotation is finished with the same new key, never a second one.
  const newKey = pendingPem ? NodePrivateKey.fromPem(pendingPem) : NodePrivateKey.generate();
  if (!pendingPem) await writeFileAtomic(paths.pendingKey, newKey.toPem(), { mode: 0o600 });
  faultPoint("rotate.key_written");

  const nodeId = identity.claims.sub;
  const nonce = randomBytes(16);
  const possession = newKey.sign(
    rotationBytes(nodeId, identity.key.publicKey.bytes, newKey.publicKey.bytes, nonce),
  );
  const envelope = sealUnary(identity, {
    case: "rotate",
    value: { newPublicKey: newKey.publicKey.bytes, newKeySignature: possession } as never,
  }, nonce);
  faultPoint("rotate.before_rpc");

  const endpoint = identity.endpoints[0];
  const client = await createNodeClient(endpoint, { caFile: identity.config.edge.ca_file });
  let response;
  try {
    response = await callNode(endpoint, () => client.rotateEdgeKey(envelope));
  } catch (error) {
    if (error instanceof AegisError && NOT_COMMITTED.has(error.code)) {
      await Deno.remove(paths.pendingKey).catch(() => {});
    }
    throw error;
  } finally {
    client.close();
  }
  faultPoint("rotate.after_rpc");

  await writeFileAtomic(paths.pendingToken, response.nodeSecurityToken + "\n", { mode: 0o600 });
  faultPoint("rotate.token_saved");
  await swapIn(paths, newKey, response.nodeSecurityToken, keepOldMs);
  return {
    nodeId,
    oldFingerprint: identity.fingerprint,
    newFingerprint: response.keyFingerprint,
    tokenExpires: response.tokenExpiresAt ? timestampDate(response.tokenExpiresAt) : new Date(0),
    resumed: Boolean(pendingPem),
  };
}
