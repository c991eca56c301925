// The local half of a rotation. The new key waits in node.key.new and, once the controller has
// answered, its token in node.token.new; the swap then archives the old key and renames both
// into place, in two steps of files written side by side (files.ts). Every command that loads the identity first finishes a swap a crash interrupted.
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { readTextIfExists, removeFileDurable } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";
import { archiveWrites } from "./archive.ts";
import { removeFiles, writeFilesAtomic } from "./files.ts";

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
  await archiveAndSave(paths, keepOldMs);
  await installNew(paths, key, token);
}

/**
 * The swap's first step: the old key into the archive and, for a rotation's fresh answer, its
 * token into node.token.new, written together. Any of them may be lost to a crash: without
 * node.token.new the rotation is sent again (the controller finishes it), and the archive is
 * written again by the swap that follows.
 */
export async function archiveAndSave(
  paths: EdgePaths,
  keepOldMs: number,
  pendingToken?: string,
): Promise<void> {
  const oldPem = await readTextIfExists(paths.key);
  const writes = oldPem === undefined ? [] : await archiveWrites(paths.archive, oldPem, keepOldMs);
  if (pendingToken !== undefined) {
    writes.push({ path: paths.pendingToken, data: pendingToken + "\n", mode: 0o600 });
  }
  await writeFilesAtomic(writes);
}

/**
 * The second step, once node.key.new and node.token.new are durable: the key, public key and
 * token into place together (a crash between them is finished from the pending pair), then the
 * pending pair removed. Either removal alone is harmless: node.token.new without node.key.new is
 * dropped, node.key.new equal to the swapped-in key is dropped by finishPendingRotation.
 * The removals are not fsynced: the swap is durable once the files above are, and a pair a
 * crash brings back holds exactly the key and token now in place (swapping it in again changes
 * nothing but an extra archive entry), so waiting for the disk a fourth time buys nothing. The
 * next atomic write in the directory (the next rotation's node.key.new) makes them durable.
 */
export async function installNew(paths: EdgePaths, key: NodePrivateKey, token: string) {
  const comment = (await readTextIfExists(paths.publicKey))?.trim().split(/\s+/)[2] ?? "aegis-edge";
  // node.key and node.token get the very bytes of the pending pair, already durable: linked,
  // not written and fsynced a second time (files.ts checks the bytes are the same).
  await writeFilesAtomic([
    { path: paths.key, data: key.toPem(), mode: 0o600, durableCopy: paths.pendingKey },
    { path: paths.publicKey, data: key.publicKey.toOpenSsh(comment) + "\n", mode: 0o644 },
    { path: paths.nodeToken, data: token + "\n", mode: 0o600, durableCopy: paths.pendingToken },
  ]);
  await removeFiles([paths.pendingToken, paths.pendingKey]);
}
