// Whether a live stream still stands on the node's current record. A stream is authenticated
// once, at Hello; the record can change under it afterwards (revocation, rotation, refresh, a
// blacklisted token) and a notification about that can be lost. The sweep in EdgeHub asks the
// database about every held stream at least once per heartbeat interval and judges each here.
import { AegisError } from "../../shared/errors.ts";
import type { DaemonStatus } from "./daemons.ts";

/** The credentials a stream authenticated with. */
export interface StreamCredentials {
  nodeId: string;
  jti: string;
  fingerprint: string;
}

/** The node's record as the sweep reads it; undefined when the node is gone. */
export interface CredentialState {
  node_id: string;
  status: DaemonStatus;
  key_fingerprint: string;
  previous_key_fingerprint: string | null;
  rotated_at: Date | null;
  /** When the stream's token was blacklisted; null when it was not. */
  token_revoked_at: Date | null;
}

/**
 * Undefined while the stream may go on; otherwise the error that ends it. Replaced credentials
 * (rotation, refresh) stay good for the overlap window, as they do for the stream's own messages.
 */
export function judgeStream(
  creds: StreamCredentials,
  state: CredentialState | undefined,
  now: Date,
  overlapMs: number,
): AegisError | undefined {
  if (!state || state.status === "revoked") {
    return new AegisError("NODE_REVOKED", `node ${creds.nodeId} was revoked`);
  }
  const within = (since: Date | null) =>
    since !== null && now.getTime() - since.getTime() < overlapMs;
  if (state.token_revoked_at && !within(state.token_revoked_at)) {
    return new AegisError(
      "NODE_TOKEN_INVALID",
      "this node token was revoked (replaced by a rotation or refresh)",
      { hint: "Use the current node.token, or re-enroll with a fresh token." },
    );
  }
  const keyIsCurrent = creds.fingerprint === state.key_fingerprint;
  const keyInOverlap = creds.fingerprint === state.previous_key_fingerprint &&
    within(state.rotated_at);
  if (!keyIsCurrent && !keyInOverlap) {
    return new AegisError(
      "KEY_TOKEN_MISMATCH",
      "the stream's key is no longer the node's key",
    );
  }
  return undefined;
}

/** How long the stream has left on replaced credentials; undefined when they are current. */
export function overlapLeftMs(
  state: CredentialState,
  now: Date,
  overlapMs: number,
): number | undefined {
  const since = state.token_revoked_at;
  if (!since) return undefined;
  return Math.max(0, overlapMs - (now.getTime() - since.getTime()));
}
