// Rows that only matter until a deadline, deleted once it passed, so the tables stay as large as
// the live state and not as large as the controller's whole history.
import type { Queryable } from "../store/db.ts";
import { EXPIRY_LEEWAY_SECS, REFRESH_GRACE_SECS } from "./tokens.ts";

/**
 * A revoked node token must stay listed while it could still be presented: an expired node
 * token is still good for a refresh for REFRESH_GRACE_SECS (plus the usual leeway).
 */
export const REVOKED_TOKEN_RETENTION_SECS = REFRESH_GRACE_SECS + EXPIRY_LEEWAY_SECS;

/** Enrollment tokens nobody redeemed are kept a day past expiry, for "why did it fail" support. */
export const UNREDEEMED_ENROLLMENT_RETENTION_SECS = 86400;

export interface Pruned {
  challenges: number;
  nonces: number;
  revokedTokens: number;
  enrollmentTokens: number;
  consoleSessions: number;
  loginLinks: number;
}

export async function pruneExpiredRows(db: Queryable, now: Date): Promise<Pruned> {
  const before = (secs: number) => new Date(now.getTime() - secs * 1000);
  const count = async (sql: string, at: Date) =>
    (await db.query<{ n: number }>(
      `WITH d AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM d`,
      [
        at,
      ],
    ))[0].n;
  return {
    challenges: await count(`DELETE FROM attest_challenges WHERE expires_at < $1`, now),
    nonces: await count(`DELETE FROM used_nonces WHERE expires_at < $1`, now),
    revokedTokens: await count(
      `DELETE FROM revoked_tokens WHERE expires_at < $1`,
      before(REVOKED_TOKEN_RETENTION_SECS),
    ),
    enrollmentTokens: await count(
      `DELETE FROM enrollment_tokens WHERE redeemed_at IS NULL AND expires_at < $1`,
      before(UNREDEEMED_ENROLLMENT_RETENTION_SECS),
    ),
    consoleSessions: await count(`DELETE FROM console_sessions WHERE expires_at < $1`, now),
    // A spent link must stay listed while the link itself could still be presented.
    loginLinks: await count(
      `DELETE FROM console_login_links WHERE expires_at < $1`,
      before(EXPIRY_LEEWAY_SECS),
    ),
  };
}
