#!/usr/bin/python3
"""A daemon's ConnectEdge stream, spoken by stock gRPC (Debian's python3-grpcio) through stubs
that protoc and grpc_python_plugin generated from proto/aegis/edge/v1/node_cluster.proto.

Usage: edge_stream_client.py TARGET STUBS_DIR CASE [LABEL_BYTES]
  CASE is one of:
    ok             Hello, then a Heartbeat; prints "ready" and waits for a line on stdin, then
                   half-closes (the server should end the call with status OK)
    bad-signature  a Hello whose signature has one bit flipped
    bad-token      a Hello under a security token that is not one
    big-hello      a Hello carrying a label of LABEL_BYTES characters
  Except for "ok", the stream is left open: the server must end the call itself.

The node comes from the environment: AEGIS_NODE_ID, AEGIS_NODE_TOKEN and AEGIS_NODE_SEED (the
Ed25519 private key's 32-byte seed, hex). The last line on stdout is one JSON object: the
downstream messages seen, and the call's final status code, details and aegis-error-code.
"""
import json
import os
import queue
import struct
import sys

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp

ENVELOPE_DOMAIN = b"aegis.edge.v1.SealNodeEnvelope"
TIMEOUT_SECS = 30


def envelope_bytes(payload: bytes) -> bytes:
    """As shared/crypto/signed_bytes.ts: domain, NUL, then each part with its u32 BE length."""
    return ENVELOPE_DOMAIN + b"\x00" + struct.pack(">I", len(payload)) + payload


class Node:
    def __init__(self, pb, node_id: str, token: str, seed: bytes):
        self.pb = pb
        self.node_id = node_id
        self.token = token
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        self.seq = 0

    def seal(self, nonce: bytes, tamper: bool = False, **body):
        """The next envelope of the stream (seq 1, 2, …) around one payload body."""
        self.seq += 1
        sent_at = Timestamp()
        sent_at.GetCurrentTime()
        payload = self.pb.NodeEnvelopePayload(
            node_id=self.node_id, stream_nonce=nonce, seq=self.seq, sent_at=sent_at, **body
        ).SerializeToString()
        signature = bytearray(self.key.sign(envelope_bytes(payload)))
        if tamper:
            signature[0] ^= 0x01
        envelope = self.pb.SealNodeEnvelope(
            security_token=self.token, payload=payload, signature=bytes(signature)
        )
        return self.pb.EdgeUpstream(envelope=envelope)


def hello(pb, label_bytes: int = 0):
    labels = {"client": "python-grpcio"}
    if label_bytes:
        labels["big"] = "x" * label_bytes
    caps = pb.Capabilities(
        os="linux", arch="x86_64", hostname="grpcio-interop", agent_version=grpc.__version__
    )
    return pb.Hello(capabilities=caps, labels=labels, heartbeat_interval_secs=30)


def requests(outbox: "queue.Queue"):
    """What the call sends: each message put in `outbox`; None half-closes the stream."""
    while True:
        message = outbox.get()
        if message is None:
            return
        yield message


def kind(message) -> str:
    return message.WhichOneof("body") or "(empty)"


def run(case: str, label_bytes: int, pb, stub, node: Node) -> dict:
    outbox: "queue.Queue" = queue.Queue()
    call = stub.ConnectEdge(requests(outbox), timeout=TIMEOUT_SECS)
    seen = []
    report = {"case": case, "seen": seen}
    try:
        opened = next(call)
        seen.append(kind(opened))
        nonce = opened.opened.stream_nonce
        report["nonce_bytes"] = len(nonce)
        if case == "bad-token":
            node.token = "not-a-node-token"
        tamper = case == "bad-signature"
        outbox.put(node.seal(nonce, tamper=tamper, hello=hello(pb, label_bytes)))
        if case == "ok":
            ack = next(call)
            seen.append(kind(ack))
            report["hello_ack_node_id"] = ack.hello_ack.node_id
            outbox.put(node.seal(nonce, heartbeat=pb.Heartbeat(running_calls=0, uptime_secs=1)))
            seen.append(kind(next(call)))
            print("ready", flush=True)
            sys.stdin.readline()
            outbox.put(None)  # half-close: the server ends the call, with status OK
        for message in call:
            seen.append(kind(message))
    except grpc.RpcError:
        pass  # the call's status says why, below
    finally:
        outbox.put(None)
    metadata = dict(call.trailing_metadata() or ())
    report["status"] = call.code().name
    report["details"] = call.details() or ""
    report["aegis_error_code"] = metadata.get("aegis-error-code", "")
    return report


def main() -> int:
    target, stubs, case = sys.argv[1:4]
    label_bytes = int(sys.argv[4]) if case == "big-hello" else 0
    sys.path.insert(0, stubs)
    from aegis.edge.v1 import node_cluster_pb2 as pb  # generated at test time
    from aegis.edge.v1 import node_cluster_pb2_grpc as pb_grpc

    node = Node(
        pb,
        os.environ["AEGIS_NODE_ID"],
        os.environ["AEGIS_NODE_TOKEN"],
        bytes.fromhex(os.environ["AEGIS_NODE_SEED"]),
    )
    with grpc.insecure_channel(target) as channel:
        report = run(case, label_bytes, pb, pb_grpc.NodeClusterServiceStub(channel), node)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
