// Attestation challenges carried by the host instead of stored: the challenge id holds what the
// host attested (key, hostname, os, arch, source address, expiry) under an HMAC, and the nonce is
// derived from it. AttestNode then writes nothing, and answering a challenge costs no read; a
// challenge is still answered once, because answering it records its id in used_nonces (in the
// enrollment's own statement when it succeeds). The MAC key is derived from the signing key, so
// relays that share the key file (they must, to accept each other's tokens) accept each other's
// challenges.
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { AegisError } from "../../shared/errors.ts";
import { randomBytes, toBase64Url } from "../../shared/crypto/encoding.ts";

const VERSION = "c1";

/** Far above the longest id the bounded AttestNode fields can make (about 700 characters). */
const MAX_ID_CHARS = 2048;

export interface AttestedChallenge {
  /** Random, unique per challenge: the key its one answer is recorded under. */
  id: string;
  /** The attested public key, base64. */
  publicKey: string;
  hostname: string;
  os: string;
  arch: string;
  remoteAddr: string;
  expiresAt: Date;
}

/** The MAC key for challenges, from the signing key's private bytes (a key of its own role). */
export function deriveChallengeKey(signingSecret: Uint8Array): Uint8Array {
  const info = "aegis attest challenge v1";
  return new Uint8Array(hkdfSync("sha256", signingSecret, new Uint8Array(), info, 32));
}

export class ChallengeSealer {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    if (key.length < 32) throw new AegisError("INTERNAL", "a challenge key needs 32 bytes");
    this.#key = key;
  }

  seal(fields: Omit<AttestedChallenge, "id">): { challengeId: string; nonce: Uint8Array } {
    const payload = Buffer.from(JSON.stringify([
      toBase64Url(randomBytes(16)),
      fields.publicKey,
      fields.hostname,
      fields.os,
      fields.arch,
      fields.remoteAddr,
      fields.expiresAt.getTime(),
    ]));
    const challengeId = `${VERSION}.${payload.toString("base64url")}.${
      this.#mac("id", payload).toString("base64url")
    }`;
    return { challengeId, nonce: new Uint8Array(this.#mac("nonce", payload)) };
  }

  /**
   * What the challenge attested, and its nonce; CHALLENGE_INVALID when it is not one of ours (or
   * was altered). Expiry is the caller's to check, against its clock.
   */
  open(challengeId: string): { challenge: AttestedChallenge; nonce: Uint8Array } {
    const parts = challengeId.length <= MAX_ID_CHARS ? challengeId.split(".") : [];
    if (parts.length !== 3 || parts[0] !== VERSION) throw invalid();
    // Buffer's base64url decoder never throws; a mangled id simply fails the MAC.
    const payload = Buffer.from(parts[1], "base64url");
    const tag = Buffer.from(parts[2], "base64url");
    const expected = this.#mac("id", payload);
    if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) throw invalid();
    const [id, publicKey, hostname, os, arch, remoteAddr, expiresAtMs] = JSON.parse(
      payload.toString(),
    );
    return {
      challenge: {
        id,
        publicKey,
        hostname,
        os,
        arch,
        remoteAddr,
        expiresAt: new Date(expiresAtMs),
      },
      nonce: new Uint8Array(this.#mac("nonce", payload)),
    };
  }

  #mac(purpose: string, payload: Uint8Array): Buffer {
    return createHmac("sha256", this.#key).update(purpose).update("\0").update(payload).digest();
  }
}

function invalid(): AegisError {
  return new AegisError(
    "CHALLENGE_INVALID",
    "the attestation challenge is unknown, used or expired",
  );
}
