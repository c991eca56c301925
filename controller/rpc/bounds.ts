// Size checks on fields anonymous callers control, made before anything is stored or logged.
import { AegisError } from "../../shared/errors.ts";
import { unprintable } from "../../shared/printable.ts";

/** Ed25519 public keys are exactly this long. */
export const PUBLIC_KEY_BYTES = 32;

export const FIELD_MAX = {
  hostname: 253, // the DNS limit
  os: 64,
  arch: 64,
  agent_version: 64,
  node_token: 8192,
} as const;

export function requireBounded(field: keyof typeof FIELD_MAX, value: string): void {
  if (value.length > FIELD_MAX[field]) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `${field} is ${value.length} characters; at most ${FIELD_MAX[field]} are allowed`,
    );
  }
  const bad = unprintable(value);
  if (bad) {
    throw new AegisError("INVALID_ARGUMENT", `${field} holds the control character ${bad}`);
  }
}

export function requirePublicKey(key: Uint8Array): void {
  if (key.length !== PUBLIC_KEY_BYTES) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `public_key must be a raw ${PUBLIC_KEY_BYTES}-byte Ed25519 key, not ${key.length} bytes`,
    );
  }
}
