// Strict CIDRs for trusted enrollment: an address and a prefix length that leaves no host bits
// set ("10.0.0.1/8" is refused rather than read as 10.0.0.0/8, since it is usually a typo for a
// /32). A bare address is its own /32 or /128. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
// compared as the IPv4 address they carry.
import { isIP } from "node:net";
import { AegisError } from "../../shared/errors.ts";

export class Cidr {
  private constructor(
    readonly text: string,
    readonly family: 4 | 6,
    readonly network: bigint,
    readonly prefix: number,
  ) {}

  static parse(
    text: string,
    where: string,
    code: "INVALID_ARGUMENT" | "CONFIG_INVALID" = "INVALID_ARGUMENT",
  ): Cidr {
    const bad = (why: string) =>
      new AegisError(code, `${where}: ${JSON.stringify(text)} ${why}`, {
        hint: 'Write a network as address/prefix, e.g. "10.0.0.0/8" or "2001:db8::/32".',
      });
    const parts = text.trim().split("/");
    if (parts.length > 2) throw bad("is not an IP address or CIDR");
    const address = parseAddress(parts[0]);
    if (!address) throw bad("is not an IP address or CIDR");
    const bits = address.family === 4 ? 32 : 128;
    const prefix = parts.length === 2 ? Number(parts[1]) : bits;
    if (parts.length === 2 && !/^\d{1,3}$/.test(parts[1])) throw bad("has no valid prefix length");
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
      throw bad(`has a prefix length outside 0-${bits}`);
    }
    if ((address.value & hostMask(bits, prefix)) !== 0n) {
      throw bad("has host bits set after the prefix (did you mean the network address?)");
    }
    return new Cidr(text.trim(), address.family, address.value, prefix);
  }

  contains(addressText: string): boolean {
    const address = parseAddress(addressText);
    if (!address || address.family !== this.family) return false;
    const bits = this.family === 4 ? 32 : 128;
    return (address.value & ~hostMask(bits, this.prefix)) === this.network;
  }
}

function hostMask(bits: number, prefix: number): bigint {
  return (1n << BigInt(bits - prefix)) - 1n;
}

/** An address as a number; IPv4-mapped IPv6 becomes IPv4. Brackets and zones are refused. */
export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  const value = text.trim().toLowerCase();
  const family = isIP(value);
  if (family === 4) return { family: 4, value: ipv4(value) };
  if (family !== 6 || value.includes("%")) return undefined;
  const mapped = value.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped) return { family: 4, value: ipv4(mapped[1]) };
  return { family: 6, value: ipv6(value) };
}

function ipv4(text: string): bigint {
  return text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6(text: string): bigint {
  let body = text;
  const v4 = body.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const n = ipv4(v4[1]);
    body = body.slice(0, v4.index) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = body.split("::");
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right]
    .reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}
