#!/usr/bin/python3
"""A stock gRPC client (Debian's python3-grpcio) asking grpc.health.v1.Health.

Usage: grpc_health_check.py TARGET [SERVICE] [--watch]

The messages are encoded by hand so that no generated stubs are needed: HealthCheckRequest is
field 1 (service, string); HealthCheckResponse is field 1 (status, enum). Prints the status name
(with --watch: of the first message Watch sends), or the gRPC status code's name when the call
fails (e.g. NOT_FOUND).
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
    args = [a for a in sys.argv[1:] if a != "--watch"]
    watch = "--watch" in sys.argv[1:]
    target, service = args[0], (args[1] if len(args) > 1 else "")
    with grpc.insecure_channel(target) as channel:
        try:
            if watch:
                stream = channel.unary_stream(
                    "/grpc.health.v1.Health/Watch",
                    request_serializer=encode_request,
                    response_deserializer=decode_status,
                )(service, timeout=10)
                status = next(stream)
                stream.cancel()
            else:
                status = channel.unary_unary(
                    "/grpc.health.v1.Health/Check",
                    request_serializer=encode_request,
                    response_deserializer=decode_status,
                )(service, timeout=10)
        except grpc.RpcError as error:
            print(error.code().name)
            return 0
        print(NAMES.get(status, "INVALID"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
