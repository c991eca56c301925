import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { HostnameGlob } from "./hostname_glob.ts";

const glob = (p: string) => HostnameGlob.parse(p, "test");

Deno.test("HostnameGlob matches case-insensitively, * within one label only", () => {
  const web = glob("*.web.example.com");
  assert.ok(web.matches("a.web.example.com"));
  assert.ok(web.matches("A-01.WEB.Example.COM"));
  assert.ok(web.matches("a.web.example.com."), "one trailing dot is ignored");
  assert.ok(!web.matches("web.example.com"), "* does not match the absent label");
  assert.ok(!web.matches("a.b.web.example.com"), "* never crosses a dot");
  assert.ok(!web.matches("a.web.example.com.evil"));
  assert.ok(glob("web-*.example.com").matches("web-01.example.com"));
  assert.ok(!glob("web-*.example.com").matches("db-01.example.com"));
  assert.ok(glob("*.dev.*").matches("box.dev.lan"));
  assert.ok(glob("vm").matches("VM"));
  assert.ok(!glob("vm").matches(""));
});

Deno.test("HostnameGlob treats everything but * literally", () => {
  assert.ok(!glob("a.example.com").matches("aXexample.com"), ". is not a regex dot");
  assert.ok(glob("a_b.example.com").matches("a_b.example.com"));
});

Deno.test("HostnameGlob.parse() refuses patterns outside the rules, naming where", () => {
  for (const bad of ["", "a..b", ".a", "a b", "a/b", "a?b", "x".repeat(254)]) {
    assert.throws(
      () => HostnameGlob.parse(bad, "bootstrap.trusted_enrollment[0].pattern", "CONFIG_INVALID"),
      (e) =>
        e instanceof AegisError && e.code === "CONFIG_INVALID" &&
        e.message.startsWith("bootstrap.trusted_enrollment[0].pattern: "),
    );
  }
});

// Review fix: `*` compiled to a backtracking regex ([^.]*), so a pattern of many stars (any
// tenant's writer may approve one, or bind a token to one) made matching a long attested
// hostname exponential: 6 stars against 60 characters took most of a second, 10 stars hang
// the controller's one thread. Every tokenless attempt matches every approved pattern.
Deno.test("HostnameGlob matching stays fast on star-heavy patterns and long names", () => {
  const timed = (pattern: string, hostname: string) => {
    const glob = HostnameGlob.parse(pattern, "test");
    const started = performance.now();
    const matched = glob.matches(hostname);
    return { matched, ms: performance.now() - started };
  };
  const small = timed("*".repeat(6) + "x", "a".repeat(60));
  assert.equal(small.matched, false);
  assert.ok(small.ms < 100, `took ${small.ms.toFixed(0)} ms`);
  const label = "a".repeat(63);
  const large = timed(
    ["*".repeat(62) + "x", "*".repeat(62) + "x", "*".repeat(62) + "x", "*".repeat(60)].join("."),
    [label, label, label, "a".repeat(61)].join("."),
  );
  assert.equal(large.matched, false);
  assert.ok(large.ms < 100, `took ${large.ms.toFixed(0)} ms`);
  // The semantics the regex had: * within one label (possibly empty), ASCII case folded only.
  assert.ok(glob("**.web.example.com").matches("a.web.example.com"));
  assert.ok(glob("*.web.example.com").matches(".web.example.com"), "an empty label is a label");
  assert.ok(glob("a*b*c.example").matches("aXXbYYc.example"));
  assert.ok(!glob("a*b*c.example").matches("aXXcYYb.example"));
  assert.ok(glob("*x").matches("x") && glob("x*").matches("X") && !glob("x*").matches("yx"));
  assert.ok(!glob("k.example").matches("\u212a.example"), "the Kelvin sign is not a k");
  assert.ok(!glob("*").matches("a.b") && glob("*").matches("a.") && !glob("*").matches("."));
});
