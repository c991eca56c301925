import assert from "node:assert/strict";
import { AegisError, ERROR_CODES, toAegisError } from "./errors.ts";

Deno.test("AegisError carries the code's exit status, HTTP status and hint", () => {
  const error = new AegisError("ENROLL_TOKEN_EXPIRED", "token expired at 12:00");
  assert.equal(error.exitCode, ERROR_CODES.ENROLL_TOKEN_EXPIRED.exit);
  assert.equal(error.httpStatus, 401);
  assert.match(error.hint, /fresh enrollment token/);
  assert.deepEqual(error.toJSON(), {
    code: "ENROLL_TOKEN_EXPIRED",
    message: "token expired at 12:00",
    hint: error.hint,
  });
});

Deno.test("toAegisError() keeps AegisErrors and wraps anything else as INTERNAL", () => {
  const kept = new AegisError("NOT_FOUND", "no such host");
  assert.equal(toAegisError(kept), kept);
  const wrapped = toAegisError(new TypeError("boom"));
  assert.equal(wrapped.code, "INTERNAL");
  assert.equal(wrapped.message, "boom");
});
