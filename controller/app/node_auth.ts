// Authenticates what a node sends: the security token must be ours, unexpired, not blacklisted,
// bound to the node's current key, and the envelope must be signed by that key.
import type {
  NodeEnvelopePayload,
  SealNodeEnvelope,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { NodePublicKey } from "../../shared/crypto/node_key.ts";
import { openEnvelope, payloadSentAt } from "../../shared/crypto/envelope.ts";
import type { NodeClaims } from "../../shared/tokens/claims.ts";
import type { Queryable } from "../store/db.ts";
import type { TokenAuthority } from "./tokens.ts";
import type { Clock } from "./clock.ts";

/** How far a unary envelope's timestamp may stray from our clock. */
const FRESHNESS_MS = 5 * 60_000;

export interface AuthenticatedNode {
  nodeId: string;
  tenantId: string;
  claims: NodeClaims;
  publicKey: NodePublicKey;
  fingerprint: string;
  /** True when the token is bound to the key a rotation just replaced (overlap window only). */
  previousKey: boolean;
}

export interface AuthOptions {
  /** Accept a token bound to the previous key while the overlap window lasts (finishing a rotation). */
  allowPreviousKey?: boolean;
  /** Accept an expired (but otherwise valid) token: refreshing it is the point. */
  allowExpired?: boolean;
}

export class NodeAuthenticator {
  constructor(
    private readonly db: Queryable,
    private readonly tokens: TokenAuthority,
    private readonly clock: Clock,
    private readonly overlapMs = 5 * 60_000,
  ) {}

  /** Checks the token and the node record; returns who is speaking. */
  async authenticateToken(token: string, options: AuthOptions = {}): Promise<AuthenticatedNode> {
    const claims = options.allowExpired
      ? await this.tokens.verifyNodeForRefresh(token)
      : await this.tokens.verifyNode(token);
    const rows = await this.db.query<{
      status: string;
      public_key: string;
      key_fingerprint: string;
      previous_public_key: string | null;
      previous_key_fingerprint: string | null;
      rotated_at: Date | null;
      revoked: boolean;
    }>(
      `SELECT d.status, d.public_key, d.key_fingerprint, d.previous_public_key, d.previous_key_fingerprint,
              d.rotated_at, EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2) AS revoked
         FROM edge_daemons d WHERE d.node_id = $1`,
      [claims.sub, claims.jti],
    );
    const row = rows[0];
    if (!row) {
      throw new AegisError(
        "NODE_REVOKED",
        `node ${claims.sub} is no longer known to this controller`,
      );
    }
    if (row.status === "revoked") {
      throw new AegisError("NODE_REVOKED", `node ${claims.sub} was revoked`);
    }
    const inOverlap = row.rotated_at !== null &&
      this.clock().getTime() - row.rotated_at.getTime() < this.overlapMs;
    if (
      options.allowPreviousKey && inOverlap && row.previous_public_key &&
      row.previous_key_fingerprint === claims.cnf.kfp
    ) {
      return {
        nodeId: claims.sub,
        tenantId: claims.tenant_id,
        claims,
        publicKey: NodePublicKey.fromBase64(row.previous_public_key),
        fingerprint: claims.cnf.kfp,
        previousKey: true,
      };
    }
    if (row.revoked) {
      throw new AegisError(
        "NODE_TOKEN_INVALID",
        "this node token was revoked (replaced by a rotation or refresh)",
        { hint: "Use the current node.token, or re-enroll with a fresh token." },
      );
    }
    if (row.key_fingerprint !== claims.cnf.kfp) {
      throw new AegisError(
        "KEY_TOKEN_MISMATCH",
        "the node token is bound to a different key than the node's",
      );
    }
    return {
      nodeId: claims.sub,
      tenantId: claims.tenant_id,
      claims,
      publicKey: NodePublicKey.fromBase64(row.public_key),
      fingerprint: row.key_fingerprint,
      previousKey: false,
    };
  }

  /** Authenticates a unary envelope: token, signature, node id and freshness. */
  async openUnary(
    envelope: SealNodeEnvelope,
    options: AuthOptions = {},
  ): Promise<{ node: AuthenticatedNode; payload: NodeEnvelopePayload }> {
    const node = await this.authenticateToken(envelope.securityToken, options);
    const payload = openEnvelope(envelope, node.publicKey);
    if (payload.nodeId !== node.nodeId) {
      throw new AegisError(
        "SIGNATURE_INVALID",
        "the envelope names a different node than its token",
      );
    }
    const sentAt = payloadSentAt(payload);
    if (!sentAt || Math.abs(sentAt.getTime() - this.clock().getTime()) > FRESHNESS_MS) {
      throw new AegisError(
        "REPLAYED",
        "the envelope is stale or from the future (replay, or clock skew)",
      );
    }
    return { node, payload };
  }
}
