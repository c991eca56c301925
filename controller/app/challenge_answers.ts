// Answers to attestation challenges: a challenge is ours and unexpired, signed by the key it
// attested, and answered once. "Once" is a row in used_nonces, written by the enrollment's own
// statement when the answer succeeds (enrollment_redeem.ts) and by spend() otherwise, so an
// answer that was refused cannot be tried again either (as when challenges were deleted on use).
import { AegisError } from "../../shared/errors.ts";
import { NodePublicKey } from "../../shared/crypto/node_key.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import { type AttestedChallenge, ChallengeSealer } from "./attest_challenge.ts";

/** How long a challenge can be answered. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

/** A used challenge is remembered this long past its expiry, for relays whose clocks differ. */
const SPENT_MARGIN_MS = 5 * 60_000;

export class ChallengeAnswers {
  readonly #sealer: ChallengeSealer;

  constructor(
    private readonly db: Queryable,
    key: Uint8Array,
    private readonly clock: Clock,
  ) {
    this.#sealer = new ChallengeSealer(key);
  }

  issue(fields: Omit<AttestedChallenge, "id" | "expiresAt">, now: Date) {
    const expiresAt = new Date(now.getTime() + CHALLENGE_TTL_MS);
    return { ...this.#sealer.seal({ ...fields, expiresAt }), expiresAt };
  }

  /** The challenge this answers, checked but not yet spent. */
  async answered(challengeId: string, signature: Uint8Array): Promise<AttestedChallenge> {
    const { challenge, nonce } = this.#sealer.open(challengeId);
    if (challenge.expiresAt.getTime() < this.clock().getTime()) throw used();
    const publicKey = NodePublicKey.fromBase64(challenge.publicKey);
    if (!publicKey.verify(signature, challengeBytes(challengeId, nonce, publicKey.bytes))) {
      await this.spend(challenge);
      throw new AegisError(
        "SIGNATURE_INVALID",
        "the challenge signature does not match the attested key",
      );
    }
    return challenge;
  }

  /** Marks the challenge answered; CHALLENGE_INVALID when it already was. */
  async spend(challenge: AttestedChallenge): Promise<void> {
    const rows = await this.db.query(
      `INSERT INTO used_nonces (nonce, node_id, expires_at) VALUES ($1, '', $2)
       ON CONFLICT (nonce) DO NOTHING RETURNING nonce`,
      [spentKey(challenge), spentUntil(challenge)],
    );
    if (rows.length === 0) throw used();
  }

  /** Runs a check of the answer; when it refuses, the challenge is spent all the same. */
  async refusing<T>(challenge: AttestedChallenge, check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (error) {
      await this.spend(challenge);
      throw error;
    }
  }
}

/** The used_nonces key a challenge is recorded under. */
export function spentKey(challenge: AttestedChallenge): string {
  return `challenge:${challenge.id}`;
}

export function spentUntil(challenge: AttestedChallenge): Date {
  return new Date(challenge.expiresAt.getTime() + SPENT_MARGIN_MS);
}

export function used(): AegisError {
  return new AegisError(
    "CHALLENGE_INVALID",
    "the attestation challenge is unknown, used or expired",
  );
}
