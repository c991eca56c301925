// A node key's fingerprint computed synchronously with node:crypto: the same string as
// NodePublicKey.fingerprint() (`SHA256:<base64 without padding>` of the OpenSSH blob), without
// WebCrypto's digest, an async operation on a worker thread that the enrollment path measured
// at a sizeable share of its time.
import { createHash } from "node:crypto";
import type { NodePublicKey } from "../../shared/crypto/node_key.ts";

export function keyFingerprint(key: NodePublicKey): string {
  const digest = createHash("sha256").update(key.sshBlob()).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}
