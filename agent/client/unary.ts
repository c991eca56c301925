// Unary node calls carry the same signed envelope as the stream, with a fresh nonce of their own.
import type { SealNodeEnvelope } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import { type PayloadBody, sealEnvelope } from "../../shared/crypto/envelope.ts";
import type { Identity } from "../state/identity.ts";

export function sealUnary(
  identity: Identity,
  body: PayloadBody,
  nonce = randomBytes(16),
): SealNodeEnvelope {
  return sealEnvelope({
    key: identity.key,
    token: identity.token,
    nodeId: identity.claims.sub,
    streamNonce: nonce,
    seq: 1n,
    body,
  });
}
