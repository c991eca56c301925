import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { compileConfigRules, TrustedEnrollment } from "./trusted_enrollment.ts";

const rules = compileConfigRules([
  { pattern: "*.web.example.com", cidrs: ["10.0.0.0/8", "2001:db8::/32"], tenant: "web" },
  { pattern: "*.web.example.com", cidrs: ["192.168.0.0/16"], tenant: "lab" },
  { pattern: "*.dev.*", cidrs: ["192.168.0.0/16"], tenant: "dev" },
]);

function refusal(e: unknown, check: string): boolean {
  return e instanceof AegisError && e.code === "ENROLL_NOT_TRUSTED" &&
    e.details.failed_check === check;
}

Deno.test("TrustedEnrollment.decide() admits the first rule matching hostname and every address", async () => {
  const trusted = new TrustedEnrollment(rules);
  assert.deepEqual(await trusted.decide("a.web.example.com", ["10.1.2.3", "10.9.9.9"]), {
    tenant: "web",
    source: "config rule 0",
  });
  assert.deepEqual(await trusted.decide("a.web.example.com", ["192.168.1.1"]), {
    tenant: "lab",
    source: "config rule 1",
  });
  assert.equal((await trusted.decide("x.dev.lan", ["192.168.5.5"])).tenant, "dev");
  assert.equal((await trusted.decide("a.web.example.com", ["2001:db8::7"])).tenant, "web");
});

Deno.test("TrustedEnrollment.decide() says which check failed, never the rules", async () => {
  const trusted = new TrustedEnrollment(rules);
  await assert.rejects(trusted.decide("db.example.com", ["10.0.0.1"]), (e) => {
    assert.ok(refusal(e, "hostname"));
    assert.match((e as Error).message, /"db\.example\.com" matches no trusted-enrollment pattern/);
    return true;
  });
  await assert.rejects(trusted.decide("a.web.example.com", ["172.16.0.1"]), (e) => {
    assert.ok(refusal(e, "source_address"));
    assert.match((e as Error).message, /source address 172\.16\.0\.1 is not in a network trusted/);
    assert.doesNotMatch((e as Error).message, /10\.0\.0\.0|192\.168|web"|tenant/);
    return true;
  });
  // Both addresses (attestation and ChallengeNode) must be inside one rule's networks.
  await assert.rejects(
    trusted.decide("a.web.example.com", ["10.0.0.1", "172.16.0.1"]),
    (e) => refusal(e, "source_address"),
  );
  await assert.rejects(
    new TrustedEnrollment([]).decide("a", ["10.0.0.1"]),
    (e) => refusal(e, "hostname"),
  );
});

Deno.test("TrustedEnrollment.decide() reads approved patterns after config rules", async () => {
  const approved = compileConfigRules([{
    pattern: "db-*.example.com",
    cidrs: ["10.0.0.0/8"],
    tenant: "db",
  }])
    .map((r) => ({ ...r, source: "approved pattern ap-1" }));
  const trusted = new TrustedEnrollment(rules, { rules: () => Promise.resolve(approved) });
  assert.deepEqual(await trusted.decide("db-1.example.com", ["10.0.0.2"]), {
    tenant: "db",
    source: "approved pattern ap-1",
  });
});

Deno.test("compileConfigRules() fails start-up on a bad pattern or CIDR, naming the key", () => {
  assert.throws(
    () =>
      compileConfigRules([{
        pattern: "ok.example",
        cidrs: ["10.0.0.0/8", "10.0.0.1/8"],
        tenant: "t",
      }]),
    (e) =>
      e instanceof AegisError && e.code === "CONFIG_INVALID" &&
      e.message.startsWith("bootstrap.trusted_enrollment[0].cidrs[1]: "),
  );
  assert.throws(
    () => compileConfigRules([{ pattern: "bad pattern", cidrs: ["10.0.0.0/8"], tenant: "t" }]),
    (e) =>
      e instanceof AegisError && e.message.startsWith("bootstrap.trusted_enrollment[0].pattern: "),
  );
});

// Review fix: approved patterns belong to tenants, and any tenant's writer may add one. With
// first-match across tenants, an older broad pattern ("*" from 0.0.0.0/0) of tenant "evil"
// captured every host that tenant "victim"'s pattern was meant to admit.
Deno.test("TrustedEnrollment.decide() refuses a host that approved patterns of two tenants admit", async () => {
  const approved = compileConfigRules([
    { pattern: "*", cidrs: ["0.0.0.0/0"], tenant: "evil" },
    { pattern: "*.*.*.*", cidrs: ["0.0.0.0/0"], tenant: "evil" },
    { pattern: "*.web.example.com", cidrs: ["10.0.0.0/8"], tenant: "victim" },
    { pattern: "*.web.example.com", cidrs: ["10.1.0.0/16"], tenant: "victim" },
  ]).map((r, i) => ({ ...r, source: `approved pattern ap-${i}` }));
  const trusted = new TrustedEnrollment([], { rules: () => Promise.resolve(approved) });
  await assert.rejects(trusted.decide("a.web.example.com", ["10.1.2.3"]), (e) => {
    assert.ok(refusal(e, "ambiguous"), String(e));
    assert.doesNotMatch((e as Error).message, /evil|victim|ap-/);
    return true;
  });
  // One tenant's patterns alone still decide (its oldest admitting pattern is named).
  assert.deepEqual(await trusted.decide("a.web.example.com", ["192.0.2.1"]), {
    tenant: "evil",
    source: "approved pattern ap-1",
  });
  assert.equal((await trusted.decide("box", ["192.0.2.1"])).tenant, "evil");
  // A config rule is the controller owner's word: it decides before any approved pattern.
  const owner = new TrustedEnrollment(rules, { rules: () => Promise.resolve(approved) });
  assert.deepEqual(await owner.decide("a.web.example.com", ["10.1.2.3"]), {
    tenant: "web",
    source: "config rule 0",
  });
});
