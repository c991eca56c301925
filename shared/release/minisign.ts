// Release signatures in minisign's formats (https://jedisct1.github.io/minisign/), so anyone can
// check a release with `minisign -Vm manifest.json -p release.pub` from their distribution, and
// an operator can sign with `minisign -S` using a key `deno task release:keygen` made (or one
// `minisign -G -W` made). Ed25519 comes from node:crypto; only the secret key's BLAKE2b-256
// checksum needs @noble/hashes, because node:crypto offers BLAKE2b with a 512-bit digest only.
//
// We sign and accept only the prehashed "ED" algorithm (Ed25519 over BLAKE2b-512 of the file).
// Legacy "Ed" signatures (over the raw file) are refused: we never make them, and accepting them
// would add a second verification path that install.sh's openssl check (over the digest) does
// not share, so two verifiers of the same release could disagree.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { blake2b } from "@noble/hashes/blake2.js";
import { concatBytes } from "../crypto/encoding.ts";
import { AegisError } from "../errors.ts";
import { MAX_SIGNATURE_BYTES } from "./manifest.ts";

/** minisign's limit on a trusted comment; ours stays inside MAX_SIGNATURE_BYTES as well. */
export const MAX_TRUSTED_COMMENT_BYTES = 1024;
const MAX_KEY_TEXT_BYTES = 4096;
const UNTRUSTED_PREFIX = "untrusted comment: ";
const TRUSTED_PREFIX = "trusted comment: ";

const ALG_ED25519 = bytes("Ed"); // public keys, secret keys, legacy signatures
const ALG_PREHASHED = bytes("ED"); // signatures over BLAKE2b-512(message)
const KDF_NONE = new Uint8Array([0, 0]);
const KDF_SCRYPT = bytes("Sc");
const CHK_BLAKE2B = bytes("B2");
const PUBLIC_KEY_LENGTH = 2 + 8 + 32;
const SECRET_KEY_LENGTH = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
const SIGNATURE_LENGTH = 2 + 8 + 64;
// DER prefixes that wrap a raw Ed25519 seed (PKCS#8) or public key (SPKI) for node:crypto.
const PKCS8_PREFIX = hex("302e020100300506032b657004220420");
const SPKI_PREFIX = hex("302a300506032b6570032100");

/** A release public key: what the `aegis` binary compiles in and checks a manifest against. */
export interface ReleasePublicKey {
  /** minisign's 8-byte key number, as stored (little-endian). */
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A release signing key. The private bytes stay inside a node KeyObject and never print. */
export class ReleaseSecretKey {
  readonly #key: KeyObject;
  readonly public: ReleasePublicKey;

  constructor(key: KeyObject, publicKey: ReleasePublicKey) {
    this.#key = key;
    this.public = publicKey;
  }

  sign(data: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, data, this.#key));
  }

  toString(): string {
    return `ReleaseSecretKey(${keyIdHex(this.public.keyId)})`;
  }
}

export interface GeneratedReleaseKey {
  /** minisign's unencrypted secret key file (as `minisign -G -W` writes it). Keep it 0600. */
  secretKeyText: string;
  /** minisign's public key file (release.pub). */
  publicKeyText: string;
  /** The key id as minisign prints it (16 upper-case hex digits). */
  keyId: string;
}

export interface ParsedSignature {
  algorithm: "ED";
  keyId: Uint8Array;
  signature: Uint8Array;
  trustedComment: string;
  globalSignature: Uint8Array;
}

/** Makes a fresh release key pair in minisign's formats. */
export function generateReleaseKey(comment?: string): GeneratedReleaseKey {
  const pair = generateKeyPairSync("ed25519");
  const jwk = pair.privateKey.export({ format: "jwk" });
  const seed = fromBase64Url(jwk.d!);
  const publicKey = fromBase64Url(jwk.x!);
  const keyId = new Uint8Array(randomBytes(8));
  const keynum = concatBytes(keyId, seed, publicKey);
  const checksum = blake2b(concatBytes(ALG_ED25519, keynum), { dkLen: 32 });
  const secret = concatBytes(
    ALG_ED25519,
    KDF_NONE,
    CHK_BLAKE2B,
    new Uint8Array(32 + 8 + 8), // salt, opslimit, memlimit: unused without a KDF
    keynum,
    checksum,
  );
  const id = keyIdHex(keyId);
  const note = oneLine(comment ?? `minisign secret key ${id} (unencrypted)`);
  return {
    secretKeyText: `${UNTRUSTED_PREFIX}${note}\n${toBase64(secret)}\n`,
    publicKeyText: formatPublicKey({ keyId, publicKey }, comment),
    keyId: id,
  };
}

/** minisign's public key file for a key: a comment line and one base64 line. */
export function formatPublicKey(key: ReleasePublicKey, comment?: string): string {
  const note = oneLine(comment ?? `minisign public key ${keyIdHex(key.keyId)}`);
  return `${UNTRUSTED_PREFIX}${note}\n${publicKeyBase64(key)}\n`;
}

/** The single base64 line minisign takes with `-P`. */
export function publicKeyBase64(key: ReleasePublicKey): string {
  return toBase64(concatBytes(ALG_ED25519, key.keyId, key.publicKey));
}

/** Reads a minisign secret key file; only unencrypted keys (`minisign -G -W`) are accepted. */
export function parseSecretKey(text: string): ReleaseSecretKey {
  const fail = (why: string) =>
    new AegisError("RELEASE_KEY_INVALID", `the release secret key is unusable: ${why}`);
  if (text.length > MAX_KEY_TEXT_BYTES) throw fail("the file is too large to be a minisign key");
  const lines = splitLines(text);
  if (lines.length !== 2 || !lines[0].startsWith(UNTRUSTED_PREFIX)) {
    throw fail("expected minisign's two lines (an untrusted comment, then base64)");
  }
  const raw = strictBase64(lines[1]);
  if (!raw || raw.length !== SECRET_KEY_LENGTH) throw fail("the key line is not minisign's");
  if (!equal(raw.subarray(0, 2), ALG_ED25519)) throw fail("the signature algorithm is not Ed25519");
  const kdf = raw.subarray(2, 4);
  if (equal(kdf, KDF_SCRYPT)) {
    throw new AegisError(
      "RELEASE_KEY_INVALID",
      "the release secret key is encrypted with a password, and the build signs unattended",
      {
        hint:
          "Use a key made by `deno task release:keygen --out DIR` or by `minisign -G -W` (no password); keep it 0600 on the build machine.",
      },
    );
  }
  if (!equal(kdf, KDF_NONE)) throw fail("unknown key derivation algorithm");
  if (!equal(raw.subarray(4, 6), CHK_BLAKE2B)) throw fail("unknown checksum algorithm");
  const keynum = raw.subarray(54, 54 + 8 + 64);
  // minisign 0.11 leaves the checksum zero in unencrypted keys and checks it only when it
  // decrypts; we write the real one, and the public/private match below catches corruption.
  const stored = raw.subarray(126, 158);
  const checksum = blake2b(concatBytes(ALG_ED25519, keynum), { dkLen: 32 });
  if (!equal(checksum, stored) && stored.some((b) => b !== 0)) {
    throw fail("its checksum does not match");
  }
  const keyId = keynum.slice(0, 8);
  const seed = keynum.subarray(8, 40);
  const publicKey = keynum.slice(40, 72);
  const key = createPrivateKey({
    key: Buffer.from(concatBytes(PKCS8_PREFIX, seed)),
    format: "der",
    type: "pkcs8",
  });
  const derived = fromBase64Url(createPublicKey(key).export({ format: "jwk" }).x!);
  if (!equal(derived, publicKey)) throw fail("its public half does not match its private half");
  return new ReleaseSecretKey(key, { keyId, publicKey });
}

/** Reads a minisign public key: the whole release.pub file, or its base64 line alone. */
export function parsePublicKey(text: string): ReleasePublicKey {
  const fail = (why: string) =>
    new AegisError("RELEASE_KEY_INVALID", `the release public key is unusable: ${why}`);
  if (text.length > MAX_KEY_TEXT_BYTES) throw fail("the text is too large to be a minisign key");
  const lines = splitLines(text);
  const line = lines.length === 1
    ? lines[0]
    : lines.length === 2 && lines[0].startsWith(UNTRUSTED_PREFIX)
    ? lines[1]
    : undefined;
  if (line === undefined) throw fail("expected a base64 line, or minisign's two-line .pub file");
  const raw = strictBase64(line.trim());
  if (!raw || raw.length !== PUBLIC_KEY_LENGTH) throw fail("the key line is not minisign's");
  if (!equal(raw.subarray(0, 2), ALG_ED25519)) throw fail("the signature algorithm is not Ed25519");
  return { keyId: raw.slice(2, 10), publicKey: raw.slice(10) };
}

/** Signs a message; returns the text of a minisign `.minisig` file (prehashed "ED"). */
export function signDetached(
  message: Uint8Array,
  secretKey: ReleaseSecretKey,
  trustedComment: string,
): string {
  if (/[\r\n]/.test(trustedComment)) {
    throw new AegisError("INVALID_ARGUMENT", "a trusted comment is one line");
  }
  const comment = bytes(trustedComment);
  if (comment.length > MAX_TRUSTED_COMMENT_BYTES) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `a trusted comment is at most ${MAX_TRUSTED_COMMENT_BYTES} bytes`,
    );
  }
  const signature = secretKey.sign(blake2b512(message));
  const global = secretKey.sign(concatBytes(signature, comment));
  const id = keyIdHex(secretKey.public.keyId);
  return `${UNTRUSTED_PREFIX}signature from AEGIS release key ${id}\n` +
    `${toBase64(concatBytes(ALG_PREHASHED, secretKey.public.keyId, signature))}\n` +
    `${TRUSTED_PREFIX}${trustedComment}\n${toBase64(global)}\n`;
}

/** Reads a `.minisig` file's parts without checking them; throws on any oddity of form. */
export function parseSignature(signatureText: string): ParsedSignature {
  if (signatureText.length > MAX_SIGNATURE_BYTES) {
    throw invalid(`the signature is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  }
  const lines = splitLines(signatureText);
  if (
    lines.length !== 4 || !lines[0].startsWith(UNTRUSTED_PREFIX) ||
    !lines[2].startsWith(TRUSTED_PREFIX)
  ) {
    throw invalid("it is not minisign's four-line signature format");
  }
  const raw = strictBase64(lines[1]);
  if (!raw || raw.length !== SIGNATURE_LENGTH) throw invalid("the signature line is malformed");
  const algorithm = raw.subarray(0, 2);
  if (equal(algorithm, ALG_ED25519)) {
    throw invalid(
      "it is a legacy (non-prehashed) minisign signature, which releases do not accept",
      "Sign with `minisign -S` without -l, or with `deno task build`.",
    );
  }
  if (!equal(algorithm, ALG_PREHASHED)) throw invalid("unknown signature algorithm");
  const globalSignature = strictBase64(lines[3]);
  if (!globalSignature || globalSignature.length !== 64) {
    throw invalid("the global signature line is malformed");
  }
  const trustedComment = lines[2].slice(TRUSTED_PREFIX.length);
  if (bytes(trustedComment).length > MAX_TRUSTED_COMMENT_BYTES) {
    throw invalid("the trusted comment is too long");
  }
  return {
    algorithm: "ED",
    keyId: raw.slice(2, 10),
    signature: raw.slice(10),
    trustedComment,
    globalSignature,
  };
}

/**
 * Checks a detached minisign signature over a message with one public key. Fail-closed: any
 * oddity (size, form, algorithm, key id, either signature) throws RELEASE_SIGNATURE_INVALID.
 */
export function verifyDetached(
  message: Uint8Array,
  signatureText: string,
  publicKey: ReleasePublicKey,
): { trustedComment: string } {
  const parsed = parseSignature(signatureText);
  if (!equal(parsed.keyId, publicKey.keyId)) {
    throw invalid(
      `it was made by key ${keyIdHex(parsed.keyId)}, not the release key ${
        keyIdHex(publicKey.keyId)
      }`,
    );
  }
  const key = publicKeyObject(publicKey);
  if (!verify(null, blake2b512(message), key, parsed.signature)) {
    throw invalid("the signature does not match the file (it was changed, or signed by another)");
  }
  const signedComment = concatBytes(parsed.signature, bytes(parsed.trustedComment));
  if (!verify(null, signedComment, key, parsed.globalSignature)) {
    throw invalid("the trusted comment was changed after signing");
  }
  return { trustedComment: parsed.trustedComment };
}

/** The key as SPKI PEM, for `openssl pkeyutl -verify -pubin -rawin` over the BLAKE2b-512 digest. */
export function publicKeyPem(publicKey: ReleasePublicKey): string {
  const der = toBase64(concatBytes(SPKI_PREFIX, publicKey.publicKey));
  const body = der.match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
}

/** minisign's display of a key id: the little-endian 64-bit number in upper-case hex. */
export function keyIdHex(keyId: Uint8Array): string {
  return [...keyId].reverse().map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

/** BLAKE2b-512, the digest "ED" signatures sign (and `openssl dgst -blake2b512` computes). */
export function blake2b512(message: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("blake2b512").update(message).digest());
}

function publicKeyObject(key: ReleasePublicKey): KeyObject {
  if (key.publicKey.length !== 32 || key.keyId.length !== 8) {
    throw invalid("the release public key is malformed");
  }
  return createPublicKey({
    key: Buffer.from(concatBytes(SPKI_PREFIX, key.publicKey)),
    format: "der",
    type: "spki",
  });
}

function invalid(why: string, hint?: string): AegisError {
  return new AegisError(
    "RELEASE_SIGNATURE_INVALID",
    `release signature refused: ${why}`,
    hint ? { hint } : {},
  );
}

/** Lines without their endings; one trailing newline (LF or CRLF) is allowed, nothing else. */
function splitLines(text: string): string[] {
  const lines = text.replace(/\r?\n$/, "").split(/\r?\n/);
  return lines;
}

function oneLine(comment: string): string {
  if (/[\r\n]/.test(comment) || comment.length > 256) {
    throw new AegisError("INVALID_ARGUMENT", "a key comment is one line of at most 256 chars");
  }
  return comment;
}

/** Canonical base64 only: anything a re-encode would not reproduce is refused. */
function strictBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const decoded = new Uint8Array(Buffer.from(text, "base64"));
  return toBase64(decoded) === text ? decoded : undefined;
}

function toBase64(data: Uint8Array): string {
  return Buffer.from(data).toString("base64");
}

function fromBase64Url(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64url"));
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
