// Key rotation and token refresh on the controller. Rotation needs two signatures: the envelope's
// by the current key (authority) and the new key's over the rotation bytes (possession). The
// database change is atomic (one statement in the common case, a transaction otherwise): new
// public key, old token blacklisted, new token bound to the new key. Every step survives a lost response: a host that never got the rotation's
// answer finishes it at any later time by sending it again (the new key signs the recorded
// rotation, so the old key alone still gets nothing), and a refresh is proven by the key, so a
// retry gets a token although the first answer blacklisted the token it came with.
import type { SealNodeEnvelope } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import { NodePublicKey } from "../../shared/crypto/node_key.ts";
import { rotationBytes } from "../../shared/crypto/signed_bytes.ts";
import { faultPoint } from "../../shared/faults.ts";
import type { Db, Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { TokenAuthority } from "./tokens.ts";
import type { AuthenticatedNode, NodeAuthenticator } from "./node_auth.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import type { RelayBus } from "./relay_bus.ts";
import { type AuditLog, nodeActor } from "./audit.ts";

interface RotationState {
  status: string;
  key_fingerprint: string;
  previous_key_fingerprint: string | null;
  /** The new key is already another live node's. */
  key_taken: boolean;
}

export interface IssuedNodeToken {
  token: string;
  expiresAt: Date;
  fingerprint: string;
}

export class KeyRotationService {
  constructor(
    private readonly db: Db,
    private readonly auth: NodeAuthenticator,
    private readonly tokens: TokenAuthority,
    private readonly hub: EdgeHub,
    private readonly bus: RelayBus | undefined,
    private readonly clock: Clock,
    private readonly settings: {
      nodeTokenTtlSecs: number;
      overlapMs: number;
      /** Where rotations and refreshes are recorded (absent: they are not). */
      audit?: { log: Pick<AuditLog, "record">; retentionDays: number };
    },
  ) {}

  /** Rotates a node's key (see #rotate) and records it, done or refused, in the audit log. */
  async rotate(envelope: SealNodeEnvelope): Promise<IssuedNodeToken> {
    const seen: { node?: AuthenticatedNode } = {};
    try {
      const issued = await this.#rotate(envelope, seen);
      this.#audit(seen.node, "node.rotate_key", "ok", { key: issued.fingerprint });
      return issued;
    } catch (error) {
      const { code, message } = toAegisError(error);
      this.#audit(seen.node, "node.rotate_key", "refused", { code, message });
      throw error;
    }
  }

  /** Records a node's own credential change; a node not yet identified has no tenant to say. */
  #audit(
    node: AuthenticatedNode | undefined,
    action: string,
    outcome: string,
    detail: Record<string, unknown>,
  ): void {
    const audit = this.settings.audit;
    if (!audit || !node) return;
    // record() never rejects: a lost record is logged there, the rotation stands.
    void audit.log.record({
      tenantId: node.tenantId,
      actor: nodeActor(node.nodeId, this.tokens.issuer),
      action,
      target: node.nodeId,
      outcome,
      detail: { ...detail, previous_key: node.fingerprint },
      retentionDays: audit.retentionDays,
    });
  }

  async #rotate(
    envelope: SealNodeEnvelope,
    seen: { node?: AuthenticatedNode },
  ): Promise<IssuedNodeToken> {
    // openUnary also refuses a replayed envelope, in the shared replay cache.
    // Both signatures prove the keys, so an expired token (within the refresh grace) is enough
    // to name the node: a host off for days still finishes its rotation.
    const { node, payload } = await this.auth.openUnary(envelope, "rotate", {
      allowPreviousKey: true,
      allowExpired: true,
    });
    seen.node = node;
    if (payload.body.case !== "rotate") throw new AegisError("INTERNAL", "unreachable");
    if (payload.streamNonce.length < 16) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        "a rotation needs a fresh nonce of 16 bytes or more",
      );
    }
    const request = payload.body.value;
    let newKey: NodePublicKey;
    try {
      newKey = new NodePublicKey(request.newPublicKey);
    } catch {
      throw new AegisError("INVALID_ARGUMENT", "the new public key is not a 32-byte Ed25519 key");
    }
    const signed = rotationBytes(
      node.nodeId,
      node.publicKey.bytes,
      newKey.bytes,
      payload.streamNonce,
    );
    if (!newKey.verify(request.newKeySignature, signed)) {
      throw new AegisError(
        "SIGNATURE_INVALID",
        "the new key did not sign the rotation (proof of possession failed); nothing was changed",
      );
    }
    if (newKey.equals(node.publicKey)) {
      throw new AegisError("INVALID_ARGUMENT", "the new key is the current key");
    }
    const fingerprint = await newKey.fingerprint();
    // The common case (the token is bound to the node's current key, and nothing raced) is one
    // statement, not a transaction of four round trips: a fleet rotating thousands of hosts
    // spends most of the controller's time sending statements. Anything else (a finish, a
    // conflict, a revoked node, a taken key) falls through to the transaction below, which
    // decides on the locked row and says which it is.
    const committed = node.previousKey
      ? undefined
      : await this.#commitAlone(node, newKey, fingerprint);
    if (committed) {
      await this.#replaced(node.nodeId);
      faultPoint("controller.rotate.after_commit");
      return committed;
    }
    const issued = await this.db.transaction(async (tx) => {
      // The row first, locked: every attempt of this node's rotations (on any relay) decides on
      // the committed state, one after another. Who the caller is was read before the lock, so
      // another relay may have committed this very rotation meanwhile: that is a finish.
      // Whether another live node holds the new key is read in the same statement: one round
      // trip less per rotation (the unique index edge_daemons_live_key still has the last word).
      const rows = await tx.query<RotationState>(
        `SELECT d.status, d.key_fingerprint, d.previous_key_fingerprint,
                EXISTS (SELECT 1 FROM edge_daemons t
                         WHERE t.public_key = $2 AND t.status <> 'revoked' AND t.node_id <> $1)
                  AS key_taken
           FROM edge_daemons d WHERE d.node_id = $1 FOR UPDATE OF d`,
        [node.nodeId, newKey.toBase64()],
      );
      const row = rows[0];
      if (!row || row.status === "revoked") {
        throw new AegisError("NODE_REVOKED", `node ${node.nodeId} was revoked`);
      }
      if (
        row.key_fingerprint === fingerprint && row.previous_key_fingerprint === node.fingerprint
      ) {
        return await this.#finishInterrupted(tx, node, fingerprint);
      }
      if (row.key_fingerprint === node.fingerprint && !node.previousKey) {
        return await this.#commit(tx, node, newKey, fingerprint, row.key_taken);
      }
      if (node.previousKey) {
        throw new AegisError(
          "NODE_TOKEN_INVALID",
          "this node token was replaced by a rotation to a different key",
        );
      }
      // Neither the caller's key nor this rotation's: a different rotation won. Nothing changed
      // here, but the caller's key is no longer the node's either.
      throw new AegisError(
        "CONFLICT",
        "the node's key changed to a third key while this rotation ran; nothing was changed",
      );
    });
    await this.#replaced(node.nodeId);
    faultPoint("controller.rotate.after_commit");
    return issued;
  }

  /**
   * A fresh token for the same key (`aegis edge token refresh`); the presented token and any
   * earlier one are blacklisted. `node` comes from a key-proven attestation, so running this
   * again after a lost response is safe: the retry gets the current token.
   */
  async refresh(node: AuthenticatedNode): Promise<IssuedNodeToken> {
    const issued = await this.db.transaction(async (tx) => {
      const next = await this.#issue(tx, node.nodeId, node.tenantId, node.fingerprint);
      await this.#blacklist(tx, node, "refreshed");
      return next;
    });
    await this.#replaced(node.nodeId);
    faultPoint("controller.refresh.after_commit");
    this.#audit(node, "node.refresh_token", "ok", {});
    return issued;
  }

  /** Streams using the replaced credentials get the overlap window, wherever they are held. */
  async #replaced(nodeId: string) {
    this.hub.get(nodeId)?.credentialsReplaced(this.settings.overlapMs);
    await this.bus?.broadcast("credentials", nodeId, this.settings.overlapMs);
  }

  /**
   * The rotation as one statement, committed on its own, when the row still holds the caller's
   * key, the node is not revoked and no other live node holds the new key; otherwise nothing
   * is changed and undefined is returned. The row is locked first (FOR UPDATE in `locked`:
   * a concurrent rotation or refresh of this node is waited for, and the row read is the
   * latest), so the tokens blacklisted are the ones on record when the key changed, as in
   * #commit. The blacklist insert depends on the update (`updated`), never runs without it.
   */
  async #commitAlone(
    node: AuthenticatedNode,
    newKey: NodePublicKey,
    fingerprint: string,
  ): Promise<IssuedNodeToken | undefined> {
    // Signed first (no database work): the whole change is then the one statement.
    const { issued, expiresAt, params } = await this.#signRotation(node, newKey, fingerprint);
    // The last point where a failure leaves the rotation uncommitted (the statement below is
    // atomic); the transaction path has the same point after its update.
    faultPoint("controller.rotate.after_key_update");
    const rows = await this.db.query(
      `WITH locked AS (
         SELECT token_jti, token_expires_at FROM edge_daemons
          WHERE node_id = $1 AND key_fingerprint = $2 AND status <> 'revoked'
          FOR UPDATE
       ), updated AS (
         UPDATE edge_daemons d SET previous_public_key = d.public_key,
                previous_key_fingerprint = d.key_fingerprint, public_key = $3,
                key_fingerprint = $4, rotated_at = $5, rotations = d.rotations + 1,
                token_jti = $6, token_expires_at = $7
           FROM locked
          WHERE d.node_id = $1 AND d.key_fingerprint = $2 AND d.status <> 'revoked'
            AND NOT EXISTS (SELECT 1 FROM edge_daemons t
                             WHERE t.public_key = $3 AND t.status <> 'revoked' AND t.node_id <> $1)
         RETURNING d.node_id
       ), revoked AS (
         INSERT INTO revoked_tokens (jti, node_id, reason, expires_at)
         SELECT DISTINCT ON (jti) jti, $1, reason, expires_at FROM (
           SELECT $8::text AS jti, 'rotated' AS reason, $9::timestamptz AS expires_at, 0 AS rank
           UNION ALL
           SELECT token_jti, 'superseded', COALESCE(token_expires_at, $5), 1 FROM locked
            WHERE token_jti IS NOT NULL AND token_jti <> $6
         ) s WHERE EXISTS (SELECT 1 FROM updated) ORDER BY jti, rank
         ON CONFLICT (jti) DO NOTHING
       )
       SELECT node_id FROM updated`,
      params,
    );
    if (rows.length === 0) return undefined;
    return { token: issued.token, expiresAt, fingerprint };
  }

  /**
   * The new token, signed before any database work, and the parameters both rotation
   * statements take: $1 node, $2 caller's key, $3 new key, $4 its fingerprint, $5 now, $6 new
   * token id, $7 its expiry, $8 caller's token id, $9 its expiry.
   */
  async #signRotation(node: AuthenticatedNode, newKey: NodePublicKey, fingerprint: string) {
    const issued = await this.tokens.issueNode({
      nodeId: node.nodeId,
      tenantId: node.tenantId,
      keyFingerprint: fingerprint,
      ttlSecs: this.settings.nodeTokenTtlSecs,
    });
    const expiresAt = new Date(issued.claims.exp * 1000);
    const params = [
      node.nodeId,
      node.fingerprint,
      newKey.toBase64(),
      fingerprint,
      this.clock(),
      issued.claims.jti,
      expiresAt,
      node.claims.jti,
      new Date(node.claims.exp * 1000),
    ];
    return { issued, expiresAt, params };
  }

  async #commit(
    tx: Queryable,
    node: AuthenticatedNode,
    newKey: NodePublicKey,
    fingerprint: string,
    keyTaken: boolean,
  ) {
    // One key is one live node: a key another node holds cannot become this node's. Its own
    // code: the daemon must not read it as "this rotation was not committed" of another attempt.
    if (keyTaken) {
      throw new AegisError(
        "KEY_IN_USE",
        "the new key is already the key of a node (another one); nothing was changed",
      );
    }
    // The token is signed first (no database work), so that the whole change is one statement:
    // the new key, the new token's id, and the caller's token (and any earlier one on record)
    // blacklisted. The CTEs read the row as it was before the update (one snapshot).
    const { issued, expiresAt, params } = await this.#signRotation(node, newKey, fingerprint);
    // The row is locked and holds the caller's key (checked by the caller), so this matches.
    const rows = await tx.query(
      `WITH before AS (
         SELECT token_jti, token_expires_at FROM edge_daemons WHERE node_id = $1
       ), revoked AS (
         INSERT INTO revoked_tokens (jti, node_id, reason, expires_at)
         SELECT DISTINCT ON (jti) jti, $1, reason, expires_at FROM (
           SELECT $8::text AS jti, 'rotated' AS reason, $9::timestamptz AS expires_at, 0 AS rank
           UNION ALL
           SELECT token_jti, 'superseded', COALESCE(token_expires_at, $5), 1 FROM before
            WHERE token_jti IS NOT NULL AND token_jti <> $6
         ) s ORDER BY jti, rank
         ON CONFLICT (jti) DO NOTHING
       )
       UPDATE edge_daemons SET previous_public_key = public_key,
              previous_key_fingerprint = key_fingerprint, public_key = $3, key_fingerprint = $4,
              rotated_at = $5, rotations = rotations + 1, token_jti = $6, token_expires_at = $7
        WHERE node_id = $1 AND key_fingerprint = $2 AND status <> 'revoked' RETURNING node_id`,
      params,
    );
    if (rows.length === 0) {
      throw new AegisError("INTERNAL", "the locked node record changed under its lock");
    }
    // Still inside the transaction: a failure here commits none of it.
    faultPoint("controller.rotate.after_key_update");
    return { token: issued.token, expiresAt, fingerprint };
  }

  /**
   * The same rotation again, already committed (by an attempt whose answer the host never got,
   * maybe on another relay, maybe while this one waited for the row lock). Checked by the caller
   * on the locked row: the node's key is this rotation's new key and its previous key is the one
   * that signed this request. Allowed at any time, because the new key signed this request too.
   */
  async #finishInterrupted(tx: Queryable, node: AuthenticatedNode, fingerprint: string) {
    return await this.#issue(tx, node.nodeId, node.tenantId, fingerprint);
  }

  async #blacklist(tx: Queryable, node: AuthenticatedNode, reason: string) {
    await tx.query(
      `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (jti) DO NOTHING`,
      [node.claims.jti, node.nodeId, reason, new Date(node.claims.exp * 1000)],
    );
  }

  async #issue(
    tx: Queryable,
    nodeId: string,
    tenantId: string,
    fingerprint: string,
  ): Promise<IssuedNodeToken> {
    const issued = await this.tokens.issueNode({
      nodeId,
      tenantId,
      keyFingerprint: fingerprint,
      ttlSecs: this.settings.nodeTokenTtlSecs,
    });
    const expiresAt = new Date(issued.claims.exp * 1000);
    // Any token issued before for this node (say, by an interrupted attempt) is superseded.
    await tx.query(
      `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at)
         SELECT token_jti, node_id, 'superseded', COALESCE(token_expires_at, $3) FROM edge_daemons
          WHERE node_id = $1 AND token_jti IS NOT NULL AND token_jti <> $2
       ON CONFLICT (jti) DO NOTHING`,
      [nodeId, issued.claims.jti, this.clock()],
    );
    await tx.query(
      `UPDATE edge_daemons SET token_jti = $2, token_expires_at = $3 WHERE node_id = $1`,
      [nodeId, issued.claims.jti, expiresAt],
    );
    return { token: issued.token, expiresAt, fingerprint };
  }
}
