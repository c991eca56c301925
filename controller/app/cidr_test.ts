import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { Cidr } from "./cidr.ts";

const cidr = (t: string) => Cidr.parse(t, "test");

Deno.test("Cidr contains IPv4 and IPv6 addresses in its network only", () => {
  assert.ok(cidr("10.0.0.0/8").contains("10.255.1.2"));
  assert.ok(!cidr("10.0.0.0/8").contains("11.0.0.1"));
  assert.ok(cidr("192.168.1.7").contains("192.168.1.7"), "a bare address is a /32");
  assert.ok(!cidr("192.168.1.7").contains("192.168.1.8"));
  assert.ok(cidr("0.0.0.0/0").contains("203.0.113.9"));
  assert.ok(cidr("2001:db8::/32").contains("2001:db8:ffff::1"));
  assert.ok(!cidr("2001:db8::/32").contains("2001:db9::1"));
  assert.ok(cidr("::1").contains("::1"));
  assert.ok(cidr("fe80::/10").contains("febf::1"));
  assert.ok(!cidr("10.0.0.0/8").contains("::ffff:11.0.0.1"));
  assert.ok(cidr("10.0.0.0/8").contains("::ffff:10.0.0.1"), "IPv4-mapped is compared as IPv4");
  assert.ok(!cidr("10.0.0.0/8").contains("2001:db8::1"), "families never mix");
  assert.ok(!cidr("10.0.0.0/8").contains("unknown"));
});

Deno.test("Cidr.parse() is strict: bad addresses, prefixes and host bits are refused", () => {
  for (
    const bad of [
      "10.0.0.1/8",
      "10.0.0.0/33",
      "10.0.0.0/",
      "10.0.0.0/x",
      "10.0.0/8",
      "2001:db8::1/32",
      "a/b/c",
      "host.example",
      "::/129",
      "fe80::1%eth0",
    ]
  ) {
    assert.throws(
      () => Cidr.parse(bad, "cidrs[0]", "CONFIG_INVALID"),
      (e) =>
        e instanceof AegisError && e.code === "CONFIG_INVALID" &&
        e.message.startsWith("cidrs[0]: "),
      bad,
    );
  }
  assert.match(
    (() => {
      try {
        cidr("10.0.0.1/8");
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    /host bits set/,
  );
});
