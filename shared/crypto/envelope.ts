// SealNodeEnvelope: the signed wrapper around everything a node sends after enrollment.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type NodeEnvelopePayload,
  NodeEnvelopePayloadSchema,
  type SealNodeEnvelope,
  SealNodeEnvelopeSchema,
} from "../gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../errors.ts";
import type { NodePrivateKey, NodePublicKey } from "./node_key.ts";
import { envelopeBytes } from "./signed_bytes.ts";

export type PayloadBody = NodeEnvelopePayload["body"];

export interface SealInput {
  key: NodePrivateKey;
  token: string;
  nodeId: string;
  streamNonce: Uint8Array;
  seq: bigint;
  body: PayloadBody;
  now?: Date;
}

export function sealEnvelope(input: SealInput): SealNodeEnvelope {
  const payload = toBinary(
    NodeEnvelopePayloadSchema,
    create(NodeEnvelopePayloadSchema, {
      nodeId: input.nodeId,
      streamNonce: input.streamNonce,
      seq: input.seq,
      sentAt: timestampFromDate(input.now ?? new Date()),
      body: input.body,
    }),
  );
  return create(SealNodeEnvelopeSchema, {
    securityToken: input.token,
    payload,
    signature: input.key.sign(envelopeBytes(payload)),
  });
}

/** Checks the signature first, and only then parses the payload. */
export function openEnvelope(
  envelope: SealNodeEnvelope,
  publicKey: NodePublicKey,
): NodeEnvelopePayload {
  if (!publicKey.verify(envelope.signature, envelopeBytes(envelope.payload))) {
    throw new AegisError("SIGNATURE_INVALID", "the envelope signature does not match the node key");
  }
  try {
    // Unknown fields are dropped, not kept: a node could otherwise hang megabytes of them on a
    // one-byte output event, and every queue sized by the known fields would under-count it.
    return fromBinary(NodeEnvelopePayloadSchema, envelope.payload, { readUnknownFields: false });
  } catch (error) {
    throw new AegisError("INVALID_ARGUMENT", "the envelope payload is not a NodeEnvelopePayload", {
      cause: error,
    });
  }
}

/** The payload's timestamp, for freshness checks. */
export function payloadSentAt(payload: NodeEnvelopePayload): Date | undefined {
  return payload.sentAt ? timestampDate(payload.sentAt) : undefined;
}
