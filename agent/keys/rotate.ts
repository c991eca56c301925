// `aegis edge keys rotate`, the five steps: (1) a fresh key in a 0600 temp file, (2) the request
// signed by the old key (envelope: authority) and the new key (possession), (3) the
// RotateEdgeKey call, (4) the controller's single transaction, (5) the local swap. A failure
// before the controller commits leaves the old key in use; after it, the pending key lets the
// next run or the daemon (at start and on its heartbeat) finish: the same request again, which
// the controller accepts at any later time because the new key signs it. The host is never
// locked out.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AegisError } from "../../shared/errors.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import { rotationBytes } from "../../shared/crypto/signed_bytes.ts";
import { faultPoint } from "../../shared/faults.ts";
import { isRetryable } from "../../shared/rpc_errors.ts";
import { readTextIfExists, removeFileDurable, writeFileAtomic } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";
import { type Identity, loadIdentity } from "../state/identity.ts";
import { callAnyEndpoint } from "../client/failover.ts";
import { sealUnary } from "../client/unary.ts";
import { archiveAndSave, installNew } from "./swap.ts";
import { withCredentialLock } from "./lock.ts";
import { callViaStream, type StreamLink } from "./stream_link.ts";

export interface RotationResult {
  nodeId: string;
  oldFingerprint: string;
  newFingerprint: string;
  tokenExpires: Date;
  resumed: boolean;
}

/** `link`: the daemon's stream, when the controller asked for the rotation over it. */
export function rotateKey(
  paths: EdgePaths,
  keepOldMs: number,
  link?: StreamLink,
): Promise<RotationResult> {
  return withCredentialLock(paths, async () => {
    const identity = await loadIdentity(paths);
    let pendingPem = await readTextIfExists(paths.pendingKey);
    if (pendingPem && NodePrivateKey.fromPem(pendingPem).publicKey.equals(identity.key.publicKey)) {
      // Left over from a swap that completed (its removal is not fsynced, swap.ts): not a
      // rotation to finish, and sending it would only be refused as "the current key".
      await removeFileDurable(paths.pendingKey);
      pendingPem = undefined;
    }
    // An interrupted rotation is finished with the same new key, never a second one.
    const newKey = pendingPem ? NodePrivateKey.fromPem(pendingPem) : NodePrivateKey.generate();
    if (!pendingPem) await writeFileAtomic(paths.pendingKey, newKey.toPem(), { mode: 0o600 });
    faultPoint("rotate.key_written");
    return await sendRotation(paths, identity, newKey, keepOldMs, Boolean(pendingPem), link);
  });
}

/**
 * Finishes a rotation that was cut short after node.key.new was written (the daemon runs this at
 * start and on its heartbeat). Does nothing when none is pending, so it never starts one.
 */
export function finishPendingRotation(
  paths: EdgePaths,
  keepOldMs: number,
): Promise<RotationResult | undefined> {
  return withCredentialLock(paths, async () => {
    const identity = await loadIdentity(paths); // also completes a swap whose token was saved
    const pendingPem = await readTextIfExists(paths.pendingKey);
    if (pendingPem === undefined) return undefined;
    const newKey = NodePrivateKey.fromPem(pendingPem);
    if (newKey.publicKey.equals(identity.key.publicKey)) {
      // Left over from a swap that completed: nothing to finish.
      await removeFileDurable(paths.pendingKey);
      return undefined;
    }
    return await sendRotation(paths, identity, newKey, keepOldMs, true);
  });
}

async function sendRotation(
  paths: EdgePaths,
  identity: Identity,
  newKey: NodePrivateKey,
  keepOldMs: number,
  resumed: boolean,
  link?: StreamLink,
): Promise<RotationResult> {
  const nodeId = identity.claims.sub;
  faultPoint("rotate.before_rpc");
  let response;
  try {
    // Sealed per attempt: each endpoint gets a fresh envelope, never a replay of the last one.
    response = await callViaStream(
      link,
      identity.endpoints,
      { caFile: identity.config.edge.ca_file },
      (client, _endpoint, options) => client.rotateEdgeKey(sealRotation(identity, newKey), options),
    );
  } catch (error) {
    // A refusal of this attempt says nothing about an earlier one (an answer lost, a deadline
    // that fired while another relay was still committing it). node.key.new goes only when the
    // controller provably still holds the old key; on any doubt it stays, to be finished later.
    if (
      error instanceof AegisError && !isRetryable(error) &&
      await controllerHoldsKey(identity, identity.fingerprint)
    ) {
      await removeFileDurable(paths.pendingKey).catch(() => false);
    }
    throw error;
  }
  faultPoint("rotate.after_rpc");

  await archiveAndSave(paths, keepOldMs, response.nodeSecurityToken);
  faultPoint("rotate.token_saved");
  await installNew(paths, newKey, response.nodeSecurityToken);
  return {
    nodeId,
    oldFingerprint: identity.fingerprint,
    newFingerprint: response.keyFingerprint,
    tokenExpires: response.tokenExpiresAt ? timestampDate(response.tokenExpiresAt) : new Date(0),
    resumed,
  };
}

/**
 * True only when the controller answers, to a request signed by `identity`, that the node's key
 * is `fingerprint`. Unreachable, refused or any other answer: false. (A describe with the old
 * token and key is refused once a rotation committed: that token was blacklisted with it.)
 */
async function controllerHoldsKey(identity: Identity, fingerprint: string): Promise<boolean> {
  try {
    const { value } = await callAnyEndpoint(
      identity.endpoints,
      { caFile: identity.config.edge.ca_file },
      (client) =>
        client.describeNode(sealUnary(identity, { case: "describe", value: {} as never })),
    );
    return value.keyFingerprint === fingerprint;
  } catch {
    return false;
  }
}

/** The request, signed by the current key (envelope) and the new one (possession). */
function sealRotation(identity: Identity, newKey: NodePrivateKey) {
  const nonce = randomBytes(16);
  const possession = newKey.sign(
    rotationBytes(identity.claims.sub, identity.key.publicKey.bytes, newKey.publicKey.bytes, nonce),
  );
  return sealUnary(identity, {
    case: "rotate",
    value: { newPublicKey: newKey.publicKey.bytes, newKeySignature: possession } as never,
  }, nonce);
}
