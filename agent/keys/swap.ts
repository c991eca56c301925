// The local half of a rotation. The new key waits in node.key.new and, once the controller has
// answered, its token in node.token.new; the swap then archives the old key and renames both
// into place. Every command that loads the identity first finishes a swap a crash interrupted.
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { readTextIfExists, removeFileDurable, writeFileAtomic } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";
import { archiveKey } from "./archive.ts";

export const DEFAULT_KEEP_OLD_MS = 24 * 3600_000;

export type PendingState = "none" | "completed" | "key-only";

/** Finishes a rotation whose new token is already on disk; says what it found. */
export async function completePendingRotation(
  paths: EdgePaths,
  keepOldMs = DEFAULT_KEEP_OLD_MS,
): Promise<PendingState> {
  const pem = await readTextIfExists(paths.pendingKey);
  if (pem === undefined) {
    await removeFileDurable(paths.pendingToken).catch(() => false);
    return "none";
  }
  const token = (await readTextIfExists(paths.pendingToken))?.trim();
  const key = NodePrivateKey.fromPem(pem);
  if (!token || decodeNodeToken(token).cnf.kfp !== await key.publicKey.fingerprint()) {
    return "key-only";
  }
  await swapIn(paths, key, token, keepOldMs);
  return "completed";
}

export async function swapIn(
  paths: EdgePaths,
  key: NodePrivateKey,
  token: string,
  keepOldMs: number,
): Promise<void> {
  const oldPem = await readTextIfExists(paths.key);
  if (oldPem !== undefined) await archiveKey(paths.archive, oldPem, keepOldMs);
  const comment = (await readTextIfExists(paths.publicKey))?.trim().split(/\s+/)[2] ?? "aegis-edge";
  await writeFileAtomic(paths.key, key.toPem(), { mode: 0o600 });
  await writeFileAtomic(paths.publicKey, key.publicKey.toOpenSsh(comment) + "\n", { mode: 0o644 });
  await writeFileAtomic(paths.nodeToken, token + "\n", { mode: 0o600 });
  // Durable removals, pending token first: a power loss may at worst leave node.key.new equal to
  // the swapped-in key, which finishPendingRotation then drops.
  await removeFileDurable(paths.pendingToken).catch(() => false);
  await removeFileDurable(paths.pendingKey).catch(() => false);
}
