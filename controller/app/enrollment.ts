// Enrollment: issuing one-time tokens, the anonymous attestation challenge, and redeeming a
// token for a node identity. The jti is spent in the same statement that creates the node and
// records its token (enrollment_redeem.ts), and redeeming it again with the node's current key
// returns the same node, so a retried enrollment never strands a host or leaves two records (a
// key the node rotated away from gets nothing). One key is one live node: enrolling a key that
// is still the key of a live node makes the new node replace it (the old one is revoked in the
// same statement), since answering the challenge proved the enroller holds that key. A token may
// be bound to a hostname glob (checked before the token is spent); trusted enrollment needs no
// token at all, and the rules in trusted_enrollment.ts decide.
import { AegisError } from "../../shared/errors.ts";
import { NodePublicKey } from "../../shared/crypto/node_key.ts";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import type { Db, Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { TokenAuthority } from "./tokens.ts";
import { type Operator, requireWriter, resolveTenant, tenantsOf } from "./operators.ts";
import type { RateLimiter } from "./rate_limit.ts";
import type { AuthenticatedNode, NodeAuthenticator } from "./node_auth.ts";
import { type Pruned, pruneExpiredRows } from "./pruning.ts";
import { HostnameGlob } from "./hostname_glob.ts";
import type { TrustedEnrollment } from "./trusted_enrollment.ts";
import { type InstallCommands, installCommands } from "./install_commands.ts";
import { redeem } from "./enrollment_redeem.ts";
import { keyFingerprint } from "./key_fingerprint.ts";
import type { AttestedChallenge } from "./attest_challenge.ts";
import { ChallengeAnswers, spentKey, spentUntil, used } from "./challenge_answers.ts";

export interface EnrollmentSettings {
  /** The endpoint written into tokens as `cep`. */
  publicEndpoint: string;
  enrollmentTtlSecs: number;
  nodeTokenTtlSecs: number;
  clockSkewLeewaySecs: number;
  /** Where hosts fetch install.sh / install.ps1 (see bootstrap_url.ts); no one-liners without. */
  bootstrapUrl?: string;
}

export interface IssuedEnrollmentToken {
  token: string;
  command: string;
  /**
   * The same enrollment with the token on standard input (`printf` is a shell builtin), so it
   * never shows in `ps` on the host: `printf '%s\n' '<token>' | aegis edge enroll --token-file -`.
   */
  command_stdin: string;
  expires_at: string;
  jti: string;
  tenant_id: string;
  name: string;
  /** The hostname glob the token is bound to, when it is. */
  hostname_pattern?: string;
  /** Install-and-enroll one-liners per OS, using the controller's bootstrap URL. */
  install?: InstallCommands;
}

/** An enrollment token's row: issued, then redeemed by (at most) one node. */
export interface EnrollmentTokenState {
  jti: string;
  tenant_id: string;
  name: string;
  expires_at: Date;
  redeemed_at: Date | null;
  node_id: string | null;
}

export interface AttestInput {
  publicKey: Uint8Array;
  hostname: string;
  os: string;
  arch: string;
  clientTime?: Date;
  remoteAddr: string;
  nodeToken?: string;
}

export interface Challenge {
  challengeId: string;
  nonce: Uint8Array;
  expiresAt: Date;
  serverTime: Date;
}

export interface Enrolled {
  nodeId: string;
  /** Live nodes that held this key before and were revoked in favour of this one. */
  replacedNodeIds: string[];
  tenantId: string;
  nodeName: string;
  token: string;
  tokenExpiresAt: Date;
  endpoint: string;
}

export class EnrollmentService {
  constructor(
    private readonly db: Db,
    private readonly tokens: TokenAuthority,
    private readonly limiter: RateLimiter,
    private readonly auth: NodeAuthenticator,
    private readonly settings: EnrollmentSettings,
    private readonly clock: Clock,
    /** Token-free enrollment rules; without them every tokenless enrollment is refused. */
    private readonly trusted?: TrustedEnrollment,
  ) {
    this.#challenges = new ChallengeAnswers(db, tokens.challengeKey, clock);
  }

  readonly #challenges: ChallengeAnswers;

  async issueToken(
    operator: Operator,
    request: { name?: string; tenant_id?: string; ttl_secs?: number; hostname_pattern?: string },
  ): Promise<IssuedEnrollmentToken> {
    requireWriter(operator, "issue enrollment tokens");
    const tenantId = resolveTenant(operator, request.tenant_id);
    const name = request.name ?? "";
    const ttlSecs = request.ttl_secs ?? this.settings.enrollmentTtlSecs;
    const hostnamePattern = request.hostname_pattern === undefined
      ? undefined
      : HostnameGlob.parse(request.hostname_pattern, "hostname_pattern").pattern;
    const { token, claims } = await this.tokens.issueEnrollment({
      tenantId,
      name,
      cep: this.settings.publicEndpoint,
      ttlSecs,
      hostnamePattern,
    });
    const expiresAt = new Date(claims.exp * 1000);
    await this.db.query(
      `INSERT INTO enrollment_tokens (jti, tenant_id, name, issued_by, expires_at, hostname_pattern)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [claims.jti, tenantId, name, operator.sub, expiresAt, hostnamePattern ?? null],
    );
    const bootstrapUrl = this.settings.bootstrapUrl;
    return {
      token,
      command: `aegis edge enroll ${token}`,
      command_stdin: `printf '%s\\n' '${token}' | aegis edge enroll --token-file -`,
      expires_at: expiresAt.toISOString(),
      jti: claims.jti,
      tenant_id: tenantId,
      name,
      ...(hostnamePattern ? { hostname_pattern: hostnamePattern } : {}),
      ...(bootstrapUrl ? { install: installCommands(bootstrapUrl, token) } : {}),
    };
  }

  /**
   * Where an issued token stands (the console's Add Edge Host page waits on it): undefined when
   * no token with this jti exists in the operator's tenants (or it expired unused and was pruned).
   */
  async tokenState(operator: Operator, jti: string): Promise<EnrollmentTokenState | undefined> {
    const rows = await this.db.query<EnrollmentTokenState>(
      `SELECT jti, tenant_id, name, expires_at, redeemed_at, node_id FROM enrollment_tokens
        WHERE jti = $1 AND tenant_id = ANY($2::text[])`,
      [jti, tenantsOf(operator)],
    );
    return rows[0];
  }

  async attest(input: AttestInput): Promise<Challenge> {
    // An enrolled node re-attesting with its valid token is not anonymous: no rate limit.
    const known = input.nodeToken ? await this.#knownNode(input.nodeToken, input.publicKey) : false;
    const waitMs = known ? 0 : this.limiter.take(input.remoteAddr);
    if (waitMs > 0) {
      throw new AegisError(
        "RATE_LIMITED",
        `too many attestations from ${input.remoteAddr}; try again in ${Math.ceil(waitMs / 1000)}s`,
        { details: { retry_after_secs: String(Math.ceil(waitMs / 1000)) } },
      );
    }
    const publicKey = new NodePublicKey(input.publicKey);
    const serverTime = this.clock();
    this.#checkSkew(input.clientTime, serverTime);
    // Nothing is stored: the challenge id carries what was attested (attest_challenge.ts).
    const { challengeId, nonce, expiresAt } = this.#challenges.issue({
      publicKey: publicKey.toBase64(),
      hostname: input.hostname,
      os: input.os,
      arch: input.arch,
      remoteAddr: input.remoteAddr,
    }, serverTime);
    return { challengeId, nonce, expiresAt, serverTime };
  }

  /** Answers a challenge with the enrollment token as bootstrap proof. */
  async enroll(
    input: { challengeId: string; signature: Uint8Array; enrollmentToken: string },
  ): Promise<Enrolled> {
    const challenge = await this.#challenges.answered(input.challengeId, input.signature);
    const claims = await this.#challenges.refusing(
      challenge,
      () => this.#checkToken(input.enrollmentToken, challenge.hostname),
    );
    const fingerprint = keyFingerprint(NodePublicKey.fromBase64(challenge.publicKey));
    const enrolled = await this.#createNode({
      jti: claims.jti,
      tenantId: claims.tenant_id,
      tokenName: claims.name,
      tokenExpiresAt: new Date(claims.exp * 1000),
      issuedBy: "unrecorded",
      name: claims.name,
      endpoint: claims.cep,
      challenge,
      fingerprint,
    });
    if (enrolled) return enrolled;
    return await this.db.transaction((tx) =>
      this.#redeemAgain(tx, claims.jti, challenge.publicKey, fingerprint)
    );
  }

  /** The token's claims; checked before it is spent, so a host it is not for leaves it unspent. */
  async #checkToken(token: string, hostname: string) {
    const claims = await this.tokens.verifyEnrollment(token);
    if (claims.hnp && !HostnameGlob.parse(claims.hnp, "token hnp").matches(hostname)) {
      throw new AegisError(
        "ENROLL_HOSTNAME_MISMATCH",
        `this enrollment token is bound to hostnames matching ${JSON.stringify(claims.hnp)}; ` +
          `this host attested as ${JSON.stringify(hostname)}`,
        { details: { hostname_pattern: claims.hnp, hostname } },
      );
    }
    return claims;
  }

  /**
   * Answers a challenge with no token: the trusted-enrollment rules decide from the hostname the
   * host attested and its source addresses (the attestation's and this call's). Each try costs
   * an attestation, so the attest rate limit bounds guessing. The enrollment is recorded like a
   * redeemed token (enrollment_tokens, issued_by "trusted enrollment (<rule>)") for the audit.
   */
  async enrollTrusted(
    input: { challengeId: string; signature: Uint8Array; remoteAddr: string },
  ): Promise<Enrolled & { rule: string }> {
    const challenge = await this.#challenges.answered(input.challengeId, input.signature);
    const decision = await this.#challenges.refusing(challenge, () => {
      if (!this.trusted) {
        throw new AegisError(
          "ENROLL_NOT_TRUSTED",
          "this controller has no trusted-enrollment rules",
          {
            details: { failed_check: "rules" },
          },
        );
      }
      return this.trusted.decide(challenge.hostname, [challenge.remoteAddr, input.remoteAddr]);
    });
    const fingerprint = keyFingerprint(NodePublicKey.fromBase64(challenge.publicKey));
    const now = this.clock();
    const enrolled = await this.#createNode({
      jti: `trusted-${crypto.randomUUID()}`,
      tenantId: decision.tenant,
      tokenName: challenge.hostname,
      tokenExpiresAt: now,
      issuedBy: `trusted enrollment (${decision.source})`,
      name: "",
      endpoint: this.settings.publicEndpoint,
      challenge,
      fingerprint,
      now,
    });
    // A fresh random jti cannot have been redeemed before.
    if (!enrolled) throw new AegisError("INTERNAL", "a trusted enrollment's jti was taken");
    return { ...enrolled, rule: decision.source };
  }

  /**
   * Spends the token, creates the node and signs its first token (signed before the write, so
   * the write is one statement); undefined when the token was already redeemed.
   */
  async #createNode(input: {
    jti: string;
    tenantId: string;
    tokenName: string;
    tokenExpiresAt: Date;
    issuedBy: string;
    name: string;
    endpoint: string;
    challenge: AttestedChallenge;
    fingerprint: string;
    now?: Date;
  }): Promise<Enrolled | undefined> {
    const { challenge, fingerprint } = input;
    const now = input.now ?? this.clock();
    const nodeId = newNodeId();
    const name = input.name || challenge.hostname || nodeId;
    const issued = await this.tokens.issueNode({
      nodeId,
      tenantId: input.tenantId,
      keyFingerprint: fingerprint,
      ttlSecs: this.settings.nodeTokenTtlSecs,
    });
    const tokenExpiresAt = new Date(issued.claims.exp * 1000);
    const redeemed = await redeem(this.db, {
      challengeKey: spentKey(challenge),
      challengeSpentUntil: spentUntil(challenge),
      jti: input.jti,
      tenantId: input.tenantId,
      tokenName: input.tokenName,
      tokenExpiresAt: input.tokenExpiresAt,
      issuedBy: input.issuedBy,
      now,
      nodeId,
      nodeName: name,
      publicKey: challenge.publicKey,
      fingerprint,
      capabilities: { os: challenge.os, arch: challenge.arch, hostname: challenge.hostname },
      endpoint: input.endpoint,
      remoteAddr: challenge.remoteAddr,
      nodeTokenJti: issued.claims.jti,
      nodeTokenExpiresAt: tokenExpiresAt,
    });
    if (redeemed.outcome === "used") throw used();
    if (redeemed.outcome === "redeemed") return undefined;
    return {
      nodeId,
      replacedNodeIds: redeemed.replacedNodeIds,
      tenantId: input.tenantId,
      nodeName: name,
      token: issued.token,
      tokenExpiresAt,
      endpoint: input.endpoint,
    };
  }

  /** Answers a challenge with the node's current token as proof: the refresh path. */
  async reattest(
    input: { challengeId: string; signature: Uint8Array; nodeToken: string },
  ): Promise<AuthenticatedNode> {
    const challenge = await this.#challenges.answered(input.challengeId, input.signature);
    await this.#challenges.spend(challenge);
    // The challenge signature proved the key; the token only has to name the node.
    return await this.auth.authenticateByKey(
      input.nodeToken,
      NodePublicKey.fromBase64(challenge.publicKey),
    );
  }

  async #knownNode(token: string, publicKey: Uint8Array): Promise<boolean> {
    try {
      const node = await this.auth.authenticateToken(token, { allowExpired: true });
      return node.publicKey.toBase64() === new NodePublicKey(publicKey).toBase64();
    } catch {
      return false;
    }
  }

  /** Removes challenges, nonces, revoked-token entries and stale enrollment tokens. */
  async pruneExpired(): Promise<Pruned> {
    return await pruneExpiredRows(this.db, this.clock());
  }

  #checkSkew(clientTime: Date | undefined, serverTime: Date): void {
    if (!clientTime) return;
    const skewSecs = Math.round((clientTime.getTime() - serverTime.getTime()) / 1000);
    if (Math.abs(skewSecs) <= this.settings.clockSkewLeewaySecs) return;
    throw new AegisError(
      "CLOCK_SKEW",
      `the host clock is ${Math.abs(skewSecs)}s ${
        skewSecs > 0 ? "ahead of" : "behind"
      } the controller ` +
        `(host ${iso(clientTime)}, controller ${
          iso(serverTime)
        }; leeway ${this.settings.clockSkewLeewaySecs}s)`,
      { details: { host_time: iso(clientTime), server_time: iso(serverTime) } },
    );
  }

  /**
   * The node's current key redeeming the same token again (a retried enrollment) gets the same
   * node. After a rotation the jti answers only for the new key: the key the node replaced
   * cannot mint a token with it.
   */
  async #redeemAgain(
    tx: Queryable,
    jti: string,
    publicKey: string,
    fingerprint: string,
  ): Promise<Enrolled> {
    const rows = await tx.query<{ node_id: string | null }>(
      `SELECT node_id FROM enrollment_tokens WHERE jti = $1`,
      [jti],
    );
    const previous = rows[0];
    if (!previous?.node_id) {
      throw new AegisError("ENROLL_TOKEN_REDEEMED", "this enrollment token was already redeemed");
    }
    const daemons = await tx.query<
      {
        tenant_id: string;
        name: string;
        status: string;
        endpoint: string;
        public_key: string;
        token_jti: string | null;
        token_expires_at: Date | null;
      }
    >(
      `SELECT tenant_id, name, status, endpoint, public_key, token_jti, token_expires_at
         FROM edge_daemons WHERE node_id = $1 FOR UPDATE`,
      [previous.node_id],
    );
    const daemon = daemons[0];
    if (!daemon || daemon.status === "revoked" || daemon.public_key !== publicKey) {
      throw new AegisError("ENROLL_TOKEN_REDEEMED", "this enrollment token was already redeemed");
    }
    const issued = await this.tokens.issueNode({
      nodeId: previous.node_id,
      tenantId: daemon.tenant_id,
      keyFingerprint: fingerprint,
      ttlSecs: this.settings.nodeTokenTtlSecs,
    });
    const tokenExpiresAt = new Date(issued.claims.exp * 1000);
    if (daemon.token_jti) {
      // The token the lost answer carried is superseded: one current token per node.
      await tx.query(
        `INSERT INTO revoked_tokens (jti, node_id, reason, expires_at) VALUES ($1, $2, 'superseded', $3)
         ON CONFLICT (jti) DO NOTHING`,
        [daemon.token_jti, previous.node_id, daemon.token_expires_at ?? tokenExpiresAt],
      );
    }
    await tx.query(
      `UPDATE edge_daemons SET token_jti = $2, token_expires_at = $3 WHERE node_id = $1`,
      [previous.node_id, issued.claims.jti, tokenExpiresAt],
    );
    return {
      nodeId: previous.node_id,
      replacedNodeIds: [],
      tenantId: daemon.tenant_id,
      nodeName: daemon.name,
      token: issued.token,
      tokenExpiresAt,
      endpoint: daemon.endpoint,
    };
  }
}

function newNodeId(): string {
  const bytes = randomBytes(8);
  return "n-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function iso(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
