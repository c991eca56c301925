import assert from "node:assert/strict";
import { requireWriter, resolveTenant } from "./operators.ts";
import type { Operator } from "./operators.ts";

const alice: Operator = {
  iss: "i",
  sub: "alice",
  exp: 0,
  tenant_id: "u-1",
  aegis_role: "operator",
  tenants: ["team-a"],
};

Deno.test("resolveTenant() defaults to the operator's tenant and allows listed team tenants", () => {
  assert.equal(resolveTenant(alice), "u-1");
  assert.equal(resolveTenant(alice, "team-a"), "team-a");
  assert.throws(
    () => resolveTenant(alice, "team-b"),
    { code: "FORBIDDEN", message: /tenant "team-b"/ } as never,
  );
});

Deno.test("requireWriter() refuses readonly with a message naming the needed roles", () => {
  requireWriter(alice, "issue enrollment tokens");
  assert.throws(
    () => requireWriter({ ...alice, aegis_role: "readonly" }, "issue enrollment tokens"),
    {
      code: "FORBIDDEN",
      message: /role "readonly" cannot issue enrollment tokens; it needs role admin or operator/,
    } as never,
  );
});
