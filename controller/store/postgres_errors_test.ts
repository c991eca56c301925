import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { describeTarget, outageAs } from "./postgres_errors.ts";

const coded = (code: string, message = code) => Object.assign(new Error(message), { code });

Deno.test("outageAs() turns connection failures into UNREACHABLE naming the target", () => {
  const wrap = outageAs("db:5432/fleet");
  for (const code of ["ECONNREFUSED", "CONNECTION_CLOSED", "08006", "57P01"]) {
    const error = wrap(coded(code, "gone"));
    assert.ok(error instanceof AegisError, code);
    assert.equal(error.code, "UNREACHABLE");
    assert.equal(error.message, "cannot reach PostgreSQL at db:5432/fleet: gone");
  }
});

Deno.test("outageAs() hands SQL errors and our own pool shutdown back unchanged", () => {
  const wrap = outageAs("db:5432/fleet");
  for (const error of [coded("23505"), coded("CONNECTION_ENDED"), new Error("x"), "str"]) {
    assert.equal(wrap(error), error);
  }
});

Deno.test("describeTarget() lists every host with its port and never credentials", () => {
  assert.equal(describeTarget({ host: ["a"], port: [5432], database: "d" }), "a:5432/d");
  assert.equal(describeTarget({ host: ["a", "b"], port: [1, 2], database: "d" }), "a:1,b:2/d");
});
