// Every signature in the protocol is over domain-separated bytes, so a signature made for one
// purpose can never be replayed as another.
import { concatBytes, utf8 } from "./encoding.ts";

export const DOMAIN = {
  challenge: "aegis.edge.v1.ChallengeNode",
  envelope: "aegis.edge.v1.SealNodeEnvelope",
  rotation: "aegis.edge.v1.RotateEdgeKey.possession",
} as const;

export function domainBytes(domain: keyof typeof DOMAIN, ...parts: Uint8Array[]): Uint8Array {
  const framed = parts.flatMap((part) => [lengthPrefix(part.length), part]);
  return concatBytes(utf8(DOMAIN[domain]), new Uint8Array([0]), ...framed);
}

/** What a node signs to answer an attestation challenge. */
export function challengeBytes(
  challengeId: string,
  nonce: Uint8Array,
  publicKey: Uint8Array,
): Uint8Array {
  return domainBytes("challenge", utf8(challengeId), nonce, publicKey);
}

/** What the new key signs in a rotation: proof that the requester holds it. */
export function rotationBytes(
  nodeId: string,
  oldPublicKey: Uint8Array,
  newPublicKey: Uint8Array,
  streamNonce: Uint8Array,
): Uint8Array {
  return domainBytes("rotation", utf8(nodeId), oldPublicKey, newPublicKey, streamNonce);
}

export function envelopeBytes(payload: Uint8Array): Uint8Array {
  return domainBytes("envelope", payload);
}

function lengthPrefix(length: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, length);
  return out;
}
