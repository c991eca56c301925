#!/usr/bin/python3
"""A stock gRPC client (Debian's python3-grpcio) asking grpc.health.v1.Health/Check.

The messages are encoded by hand so that no generated stubs are needed: HealthCheckRequest is
field 1 (service, string); HealthCheckResponse is field 1 (status, enum). Prints the status name.
"""
import sys

import grpc

NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def encode_request(service: str) -> bytes:
    data = service.encode()
    return (b"\x0a" + bytes([len(data)]) + data) if data else b""


def decode_status(payload: bytes) -> int:
    if not payload:
        return 0  # proto3 default: UNKNOWN
    if payload[0] != 0x08:
        raise ValueError(f"unexpected response bytes {payload!r}")
    return payload[1]


def main() -> int:
    target, service = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda s: encode_request(s),
            response_deserializer=decode_status,
        )
        print(NAMES.get(check(service, timeout=10), "INVALID"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
