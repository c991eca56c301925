// Web console sessions: a browser that signed in with an operator token or a one-time login link
// holds a random session id in a cookie; the database holds only its SHA-256, the operator claims
// it acts with, its CSRF token and its end. Every console request goes through find(); sign-out
// deletes the row, so a copied cookie is dead from then on, on every relay.
import { createHash } from "node:crypto";
import { AegisError } from "../../shared/errors.ts";
import { toBase64Url } from "../../shared/crypto/encoding.ts";
import { type OperatorClaims, OperatorClaimsSchema } from "../../shared/tokens/claims.ts";
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { Operator } from "./operators.ts";
import type { TokenAuthority } from "./tokens.ts";

/** A session lasts this long at most, and never past the credential it was made from. */
export const CONSOLE_SESSION_MAX_SECS = 12 * 3600;
/** Sessions one identity (issuer, subject, tenant) may hold at once; past it the oldest ends. */
export const CONSOLE_SESSIONS_PER_SUBJECT = 20;

export interface ConsoleSession {
  operator: Operator;
  csrf: string;
  expiresAt: Date;
}

export interface NewConsoleSession extends ConsoleSession {
  /** The cookie value: shown once, stored only as a hash. */
  id: string;
}

const linkUsed = () =>
  new AegisError("UNAUTHENTICATED", "this login link was already used", {
    hint: "A login link signs in once. Ask for a new one: aegis-controller token create --login",
  });
const randomToken = () => toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
const hashOf = (id: string) => createHash("sha256").update(id).digest("hex");
/** A session id as the cookie carries it: 43 base64url characters. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export class ConsoleSessions {
  constructor(
    private readonly db: Queryable,
    private readonly tokens: TokenAuthority,
    private readonly clock: Clock,
  ) {}

  /** Signs in with an operator token: the session acts with exactly the token's claims. */
  async signInWithToken(token: string): Promise<NewConsoleSession> {
    if (token.trim().length === 0 || token.length > 16_384) {
      throw new AegisError("UNAUTHENTICATED", "paste an operator token to sign in");
    }
    const claims = await this.tokens.verifyOperator(token);
    return await this.#create(claims);
  }

  /**
   * Signs in with a one-time login link. The link's id is recorded as spent in the same statement
   * that finds it unspent, so of two browsers racing with one link, one gets a session.
   */
  async signInWithLink(link: string): Promise<NewConsoleSession> {
    if (link.length > 16_384) throw new AegisError("UNAUTHENTICATED", "the login link is invalid");
    const claims = await this.tokens.verifyLoginLink(link);
    const spent = await this.db.query(
      `INSERT INTO console_login_links (jti, expires_at) VALUES ($1, $2)
       ON CONFLICT (jti) DO NOTHING RETURNING jti`,
      [claims.jti, new Date(claims.exp * 1000)],
    );
    if (spent.length === 0) throw linkUsed();
    // The link's exp bounds when it may be used, not how long the session it opens lasts.
    const { aud: _aud, jti: _jti, ...operator } = claims;
    const sessionEnd = Math.floor(this.clock().getTime() / 1000) + CONSOLE_SESSION_MAX_SECS;
    return await this.#create(OperatorClaimsSchema.parse({ ...operator, exp: sessionEnd }));
  }

  /** Whom a login link signs in as, without spending it; refused once it was used. */
  async describeLink(link: string): Promise<OperatorClaims> {
    if (link.length > 16_384) throw new AegisError("UNAUTHENTICATED", "the login link is invalid");
    const claims = await this.tokens.verifyLoginLink(link);
    const spent = await this.db.query(`SELECT 1 FROM console_login_links WHERE jti = $1`, [
      claims.jti,
    ]);
    if (spent.length > 0) throw linkUsed();
    const { aud: _aud, jti: _jti, ...operator } = claims;
    return OperatorClaimsSchema.parse(operator);
  }

  /** The live session with this cookie value, or undefined (unknown, malformed or expired). */
  async find(id: string | undefined): Promise<ConsoleSession | undefined> {
    if (!id || !SESSION_ID.test(id)) return undefined;
    const rows = await this.db.query<{ claims: OperatorClaims; csrf: string; expires_at: Date }>(
      `SELECT claims, csrf, expires_at FROM console_sessions WHERE id_hash = $1 AND expires_at > $2`,
      [hashOf(id), this.clock()],
    );
    const row = rows[0];
    if (!row) return undefined;
    return { operator: row.claims, csrf: row.csrf, expiresAt: new Date(row.expires_at) };
  }

  async signOut(id: string | undefined): Promise<void> {
    if (!id || !SESSION_ID.test(id)) return;
    await this.db.query(`DELETE FROM console_sessions WHERE id_hash = $1`, [hashOf(id)]);
  }

  async #create(operator: OperatorClaims): Promise<NewConsoleSession> {
    const now = this.clock();
    const expiresAt = new Date(
      Math.min(now.getTime() + CONSOLE_SESSION_MAX_SECS * 1000, operator.exp * 1000),
    );
    const id = randomToken();
    const csrf = randomToken();
    // The bound counts per identity: issuer, subject and tenant (`token create` names every CLI
    // admin "cli:admin", so the subject alone would let one tenant's sign-ins end another's).
    const identity = JSON.stringify([operator.iss, operator.sub, operator.tenant_id]);
    await this.db.query(
      `INSERT INTO console_sessions (id_hash, identity, claims, csrf, expires_at)
       VALUES ($1, $2, $3::jsonb, $4, $5)`,
      [hashOf(id), identity, JSON.stringify(operator), csrf, expiresAt],
    );
    // The oldest sessions of this identity past the bound end (a script signing in in a loop
    // cannot grow the table without bound).
    await this.db.query(
      `DELETE FROM console_sessions WHERE id_hash IN (
         SELECT id_hash FROM console_sessions WHERE identity = $1
          ORDER BY created_at DESC, id_hash OFFSET $2)`,
      [identity, CONSOLE_SESSIONS_PER_SUBJECT],
    );
    return { id, operator, csrf, expiresAt };
  }
}
