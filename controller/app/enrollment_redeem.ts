// The write an enrollment makes, as one statement: mark the challenge answered, spend the token
// (or record the trusted enrollment), revoke the live nodes holding the same key (blacklisting their tokens), and create
// the node with its first token. One statement is atomic on its own, so it needs no transaction:
// on PostgreSQL that is one round trip instead of six, on PGlite one commit instead of a
// BEGIN/COMMIT pair around three statements.
import type { Queryable } from "../store/db.ts";

export interface Redemption {
  /** The challenge answered: its used_nonces key and how long that row must stay. */
  challengeKey: string;
  challengeSpentUntil: Date;
  /** The enrollment token's jti (or the trusted enrollment's own). */
  jti: string;
  tenantId: string;
  /** The token row's name and expiry, written only if the row was never recorded. */
  tokenName: string;
  tokenExpiresAt: Date;
  /** Who issued it, for a row written here ("unrecorded", or the trusted rule). */
  issuedBy: string;
  now: Date;
  nodeId: string;
  nodeName: string;
  publicKey: string;
  fingerprint: string;
  capabilities: Record<string, string>;
  endpoint: string;
  remoteAddr: string;
  nodeTokenJti: string;
  nodeTokenExpiresAt: Date;
}

/**
 * "created", or why not: the challenge was answered before ("used", nothing was written), or the
 * token was redeemed before ("redeemed", the challenge is spent now).
 */
export type Redeemed =
  | { outcome: "created"; replacedNodeIds: string[] }
  | { outcome: "used" }
  | { outcome: "redeemed" };

// Data-modifying CTEs run concurrently on one snapshot, so the order that matters is forced by
// data flow: `won` reads `spent` (nothing happens unless the challenge was unanswered),
// `replaced` and `created` read `won` (nothing more happens unless the token was won),
// and `created` reads all of `replaced` (count) before it inserts, so the old holder of the key
// is revoked before the new node enters the one-live-node-per-key index.
const REDEEM = `
WITH spent AS (
  INSERT INTO used_nonces (nonce, node_id, expires_at) VALUES ($16, $7, $17)
  ON CONFLICT (nonce) DO NOTHING
  RETURNING 1
), won AS (
  INSERT INTO enrollment_tokens (jti, tenant_id, name, issued_by, expires_at, redeemed_at, node_id, redeemed_public_key)
  SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM spent)
  ON CONFLICT (jti) DO UPDATE SET redeemed_at = $6, node_id = $7, redeemed_public_key = $8
    WHERE enrollment_tokens.redeemed_at IS NULL
  RETURNING node_id
), replaced AS (
  UPDATE edge_daemons SET status = 'revoked', status_since = $6
   WHERE public_key = $8 AND status <> 'revoked' AND EXISTS (SELECT 1 FROM won)
  RETURNING node_id, token_jti, token_expires_at
), blacklisted AS (
  INSERT INTO revoked_tokens (jti, node_id, reason, expires_at)
  SELECT token_jti, node_id, 'replaced', COALESCE(token_expires_at, $6) FROM replaced
   WHERE token_jti IS NOT NULL
  ON CONFLICT (jti) DO NOTHING
), created AS (
  INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status, status_since,
    capabilities, endpoint, remote_addr, token_jti, token_expires_at, enrollment_jti)
  SELECT $7, $2, $9::text, $8, $10::text, 'pending', $6, $11::jsonb, $12::text, $13::text,
         $14::text, $15::timestamptz, $1
    FROM won, (SELECT count(*) FROM replaced) AS after_replacing
  RETURNING node_id
)
SELECT (SELECT count(*)::int FROM spent) AS spent, (SELECT count(*)::int FROM created) AS created,
       ARRAY(SELECT node_id FROM replaced) AS replaced`;

/** Runs the enrollment's write. */
export async function redeem(db: Queryable, r: Redemption): Promise<Redeemed> {
  const rows = await db.query<{ spent: number; created: number; replaced: string[] }>(REDEEM, [
    r.jti,
    r.tenantId,
    r.tokenName,
    r.issuedBy,
    r.tokenExpiresAt,
    r.now,
    r.nodeId,
    r.publicKey,
    r.nodeName,
    r.fingerprint,
    JSON.stringify(r.capabilities),
    r.endpoint,
    r.remoteAddr,
    r.nodeTokenJti,
    r.nodeTokenExpiresAt,
    r.challengeKey,
    r.challengeSpentUntil,
  ]);
  const row = rows[0];
  if (row.spent === 0) return { outcome: "used" };
  if (row.created === 0) return { outcome: "redeemed" };
  return { outcome: "created", replacedNodeIds: row.replaced };
}
