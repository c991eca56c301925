// Authenticates what a node sends: the security token must be ours, unexpired, not blacklisted,
// bound to the node's current key, and the envelope must be signed by that key. Unary envelopes
// must also carry the body of the RPC they were sent to, and are accepted once (replay cache).
// The key is the identity and a token a renewable convenience: proving the current key
// (authenticateByKey) names the node even when its token was blacklisted or superseded.
import type {
  NodeEnvelopePayload,
  SealNodeEnvelope,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { NodePublicKey } from "../../shared/crypto/node_key.ts";
import { openEnvelope, payloadSentAt } from "../../shared/crypto/envelope.ts";
import type { NodeClaims } from "../../shared/tokens/claims.ts";
import { toBase64 } from "../../shared/crypto/encoding.ts";
import type { Queryable } from "../store/db.ts";
import type { TokenAuthority } from "./tokens.ts";
import type { Clock } from "./clock.ts";

/** How far a unary envelope's timestamp may stray from our clock. */
const FRESHNESS_MS = 5 * 60_000;

/** How long a unary envelope is remembered: past both sides of the freshness window. */
export const UNARY_REPLAY_TTL_MS = 3 * FRESHNESS_MS;

/** Unary node requests are tiny (a describe, a rotation); anything bigger is refused unread. */
export const MAX_UNARY_PAYLOAD_BYTES = 16 * 1024;
export const MAX_NODE_TOKEN_CHARS = 8 * 1024;

/** The unary RPCs that take a SealNodeEnvelope, by the payload body each one needs. */
export type UnaryBody = "describe" | "rotate" | "deregister";

export interface AuthenticatedNode {
  nodeId: string;
  tenantId: string;
  claims: NodeClaims;
  publicKey: NodePublicKey;
  fingerprint: string;
  /** True when the token is bound to the key a rotation replaced (finishing that rotation only). */
  previousKey: boolean;
}

export interface AuthOptions {
  /**
   * Accept a token bound to the key the last rotation replaced, with no time limit: neither since
   * the rotation nor on the token's own expiry (it must still be ours, for this node, bound to
   * that key, and the node not revoked). Only for finishing that rotation, where the new key must
   * sign too: a host whose rotation response was lost can then always finish it, however long it
   * was off, while the old key alone can do nothing.
   */
  allowPreviousKey?: boolean;
  /** Accept an expired (but otherwise valid) token: refreshing it is the point. */
  allowExpired?: boolean;
}

export class NodeAuthenticator {
  constructor(
    private readonly db: Queryable,
    private readonly tokens: TokenAuthority,
    // No overlap window here: streams get theirs from EdgeHub, and finishing a rotation
    // deliberately has none.
    private readonly clock: Clock,
  ) {}

  /** Checks the token and the node record; returns who is speaking. */
  async authenticateToken(token: string, options: AuthOptions = {}): Promise<AuthenticatedNode> {
    // Finishing a rotation ignores the token's age (checked below for everything else).
    const claims = options.allowPreviousKey
      ? await this.tokens.verifyNodeAnyAge(token)
      : options.allowExpired
      ? await this.tokens.verifyNodeForRefresh(token)
      : await this.tokens.verifyNode(token);
    const rows = await this.db.query<{
      status: string;
      public_key: string;
      key_fingerprint: string;
      previous_public_key: string | null;
      previous_key_fingerprint: string | null;
      revoked: boolean;
    }>(
      `SELECT d.status, d.public_key, d.key_fingerprint, d.previous_public_key, d.previous_key_fingerprint,
              EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = $2) AS revoked
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
    if (
      options.allowPreviousKey && row.previous_public_key &&
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
    if (options.allowPreviousKey) {
      // Not the finish of a recorded rotation: the token's age counts as usual.
      if (options.allowExpired) await this.tokens.verifyNodeForRefresh(token);
      else await this.tokens.verifyNode(token);
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

  /**
   * The refresh path: the attested key (whose possession the challenge signature proved) must be
   * the node's current key; the token, checked as ours and within the refresh grace, only names
   * the node. A blacklisted or superseded token therefore still works with the key (a refresh
   * whose response was lost is retried safely), a token without the key gets nothing, and a
   * revoked node gets nothing.
   */
  async authenticateByKey(token: string, attested: NodePublicKey): Promise<AuthenticatedNode> {
    if (token.length > MAX_NODE_TOKEN_CHARS) {
      throw new AegisError("NODE_TOKEN_INVALID", "the node token is too long");
    }
    const claims = await this.tokens.verifyNodeForRefresh(token);
    const rows = await this.db.query<
      { status: string; tenant_id: string; public_key: string; key_fingerprint: string }
    >(
      `SELECT status, tenant_id, public_key, key_fingerprint FROM edge_daemons WHERE node_id = $1`,
      [claims.sub],
    );
    const row = rows[0];
    if (!row || row.status === "revoked") {
      throw new AegisError("NODE_REVOKED", `node ${claims.sub} was revoked`);
    }
    if (row.public_key !== attested.toBase64()) {
      throw new AegisError(
        "KEY_TOKEN_MISMATCH",
        `the attested key is not the current key of node ${claims.sub}`,
        { hint: "If a key rotation was interrupted, run `aegis edge keys rotate` to finish it." },
      );
    }
    return {
      nodeId: claims.sub,
      tenantId: row.tenant_id,
      claims,
      publicKey: attested,
      fingerprint: row.key_fingerprint,
      previousKey: false,
    };
  }

  /**
   * Authenticates a unary envelope: size, token, signature, node id, freshness, the body the RPC
   * needs, and that this exact envelope was not accepted before (in the database, so the check
   * holds across relays).
   */
  async openUnary(
    envelope: SealNodeEnvelope,
    expected: UnaryBody,
    options: AuthOptions = {},
  ): Promise<{ node: AuthenticatedNode; payload: NodeEnvelopePayload }> {
    if (
      envelope.payload.length > MAX_UNARY_PAYLOAD_BYTES ||
      envelope.securityToken.length > MAX_NODE_TOKEN_CHARS
    ) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `a unary node envelope is limited to ${MAX_UNARY_PAYLOAD_BYTES} payload bytes and a ${MAX_NODE_TOKEN_CHARS}-character token`,
      );
    }
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
    if (payload.body.case !== expected) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `this RPC needs a ${expected} payload, not ${payload.body.case ?? "an empty one"}`,
      );
    }
    await this.#spend(node.nodeId, envelope.payload);
    return { node, payload };
  }

  /** Remembers the envelope until it is stale anyway; a second arrival is a replay. */
  async #spend(nodeId: string, payload: Uint8Array): Promise<void> {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", payload as BufferSource));
    const spent = await this.db.query(
      `INSERT INTO used_nonces (nonce, node_id, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (nonce) DO NOTHING RETURNING nonce`,
      [
        `envelope:${toBase64(digest)}`,
        nodeId,
        new Date(this.clock().getTime() + UNARY_REPLAY_TTL_MS),
      ],
    );
    if (spent.length === 0) {
      throw new AegisError(
        "REPLAYED",
        "this request was already received (replay); nothing was done",
      );
    }
  }
}
