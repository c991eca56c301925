import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { AegisError } from "./errors.ts";
import { fromConnectError, isRetryable, toConnectError } from "./rpc_errors.ts";

Deno.test("an AegisError survives the trip through a ConnectError with code, hint and details", () => {
  const original = new AegisError("CLOCK_SKEW", "host is 600s ahead", {
    details: { host_time: "2026-01-01T00:10:00Z", server_time: "2026-01-01T00:00:00Z" },
  });
  const wire = toConnectError(original);
  assert.equal(wire.code, Code.FailedPrecondition);
  const back = fromConnectError(wire);
  assert.equal(back.code, "CLOCK_SKEW");
  assert.equal(back.message, "host is 600s ahead");
  assert.equal(back.hint, original.hint);
  assert.deepEqual(back.details, original.details);
});

Deno.test("fromConnectError() maps transport failures without metadata", () => {
  const refused = new ConnectError("connect ECONNREFUSED", Code.Unavailable);
  assert.equal(fromConnectError(refused, "127.0.0.1:1").code, "UNREACHABLE");
  assert.match(fromConnectError(refused, "127.0.0.1:1").message, /cannot reach 127\.0\.0\.1:1/);
  const tls = new ConnectError(
    "x",
    Code.Unavailable,
    undefined,
    undefined,
    new Error("self-signed certificate"),
  );
  assert.equal(fromConnectError(tls).code, "TLS_FAILED");
});

Deno.test("fromConnectError() keeps a plain INVALID_ARGUMENT, which is not worth a retry", () => {
  const wire = new ConnectError("parse binary: premature EOF", Code.InvalidArgument);
  const error = fromConnectError(wire, "the controller");
  assert.equal(error.code, "INVALID_ARGUMENT");
  assert.equal(error.message, "the controller refused the request: parse binary: premature EOF");
  assert.equal(isRetryable(error), false);
});
