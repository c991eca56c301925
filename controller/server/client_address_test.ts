import assert from "node:assert/strict";
import { addressBucket, ClientAddressResolver } from "./client_address.ts";
import { AegisError } from "../../shared/errors.ts";

Deno.test("ClientAddressResolver.resolve() believes forwarding headers only from trusted proxies", () => {
  const none = new ClientAddressResolver();
  assert.equal(none.resolve("::ffff:10.0.0.5", { "x-forwarded-for": "1.2.3.4" }), "10.0.0.5");

  const proxy = new ClientAddressResolver(["10.0.0.0/8", "fd00::/8"]);
  assert.equal(proxy.resolve("198.51.100.1", { "x-forwarded-for": "1.2.3.4" }), "198.51.100.1");
  assert.equal(proxy.resolve("10.0.0.5", { "x-forwarded-for": "1.2.3.4" }), "1.2.3.4");
  // The client may prepend anything; only what trusted hops appended counts.
  assert.equal(
    proxy.resolve("10.0.0.5", { "x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.9" }),
    "1.2.3.4",
  );
  const rfc7239 = new ClientAddressResolver(["10.0.0.0/8", "fd00::/8"], "forwarded");
  assert.equal(
    rfc7239.resolve("fd00::1", { forwarded: 'for="[2001:db8::7]:4711";proto=https, for=10.1.1.1' }),
    "2001:db8::7",
  );
  // An unparseable hop ends the chain at the last trusted address.
  assert.equal(proxy.resolve("10.0.0.5", { "x-forwarded-for": "unknown" }), "10.0.0.5");
  assert.equal(proxy.resolve("10.0.0.5", {}), "10.0.0.5");
});

Deno.test("ClientAddressResolver.resolve() reads only the forwarding header the proxies write", () => {
  // Caddy rewrites X-Forwarded-For but passes a client's own Forwarded through untouched: a
  // client behind it must not pick its address (10.0.0.5, inside a trusted enrollment CIDR).
  const xff = new ClientAddressResolver(["127.0.0.1/32"]);
  const spoofed = { forwarded: "for=10.0.0.5", "x-forwarded-for": "203.0.113.9" };
  assert.equal(xff.resolve("127.0.0.1", spoofed), "203.0.113.9");
  assert.equal(xff.resolve("127.0.0.1", { forwarded: "for=10.0.0.5" }), "127.0.0.1");
  // And the other way round, for a proxy that writes Forwarded.
  const rfc7239 = new ClientAddressResolver(["127.0.0.1/32"], "forwarded");
  assert.equal(
    rfc7239.resolve("127.0.0.1", { forwarded: "for=203.0.113.9", "x-forwarded-for": "10.0.0.5" }),
    "203.0.113.9",
  );
  assert.equal(rfc7239.resolve("127.0.0.1", { "x-forwarded-for": "10.0.0.5" }), "127.0.0.1");
});

Deno.test("addressBucket() keys IPv6 by /64 and leaves IPv4 alone", () => {
  assert.equal(addressBucket("203.0.113.9"), "203.0.113.9");
  assert.equal(addressBucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("2001:DB8:1:2::ffff"), addressBucket("2001:db8:1:2:0:0:0:1"));
  assert.notEqual(addressBucket("2001:db8:1:3::1"), addressBucket("2001:db8:1:2::1"));
  assert.equal(addressBucket("::1"), "0:0:0:0::/64");
});

Deno.test("ClientAddressResolver() refuses a malformed trusted proxy entry", () => {
  for (const bad of ["10.0.0.0/33", "not-an-ip", "10.0.0.0/8/1", "fd00::/129"]) {
    assert.throws(
      () => new ClientAddressResolver([bad]),
      (e) => e instanceof AegisError && e.code === "CONFIG_INVALID",
    );
  }
});
