// "Who is this client?" for rate limits, admission caps and the address recorded for a node.
// The socket peer is believed unless it is a configured trusted proxy; then the chain of the one
// forwarding header those proxies write (X-Forwarded-For, or RFC 7239 Forwarded: configured,
// never both) is walked from the right, past every trusted hop, to the first address a trusted
// proxy saw. Limits key IPv6 clients by /64, the block one host usually holds,
// so rotating through its addresses buys nothing.
import { BlockList, isIP } from "node:net";
import { AegisError } from "../../shared/errors.ts";

/** Hops of a forwarding chain looked at; a longer chain is someone padding it. */
const MAX_HOPS = 16;

type Headers = Record<string, string | string[] | undefined>;

/** The forwarding header a deployment's proxies write (cluster.ingress.forwarded_header). */
export type ForwardedHeader = "x-forwarded-for" | "forwarded";

export class ClientAddressResolver {
  readonly #trusted = new BlockList();
  readonly #any: boolean;

  /** Throws CONFIG_INVALID for anything that is not an address or a CIDR. */
  constructor(
    trustedProxies: readonly string[] = [],
    readonly forwardedHeader: ForwardedHeader = "x-forwarded-for",
  ) {
    for (const entry of trustedProxies) addCidr(this.#trusted, entry);
    this.#any = trustedProxies.length > 0;
  }

  resolve(peer: string | undefined, headers: Headers): string {
    const socketAddress = normalize(peer ?? "") ?? "unknown";
    if (!this.#any || !this.#isTrusted(socketAddress)) return socketAddress;
    const chain = forwardedChain(headers, this.forwardedHeader).slice(-MAX_HOPS);
    let client = socketAddress;
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = normalize(chain[i]);
      // An unparseable hop ("unknown", an obfuscated name) ends what we can believe.
      if (!hop) break;
      client = hop;
      if (!this.#isTrusted(hop)) break;
    }
    return client;
  }

  /** The socket peer as limits see it (no forwarding headers: at the TCP level there are none). */
  socketAddress(peer: string | undefined): string {
    return normalize(peer ?? "") ?? "unknown";
  }

  /** Whether a (normalized) socket address is one of cluster.ingress.trusted_proxies. */
  isTrustedProxy(address: string): boolean {
    return this.#any && this.#isTrusted(address);
  }

  #isTrusted(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.#trusted.check(address, family === 4 ? "ipv4" : "ipv6");
  }
}

/** The key limits count by: an IPv4 address, or the /64 an IPv6 address sits in. */
export function addressBucket(address: string): string {
  if (isIP(address) !== 6) return address;
  return `${expandIpv6(address).slice(0, 4).join(":")}::/64`;
}

/** The wider block an address sits in, for quotas a crowd of neighbours shares: /24 or /48. */
export function prefixBucket(address: string): string {
  const family = isIP(address);
  if (family === 4) return `${address.split(".").slice(0, 3).join(".")}.0/24`;
  if (family === 6) return `${expandIpv6(address).slice(0, 3).join(":")}::/48`;
  return address;
}

function forwardedChain(headers: Headers, header: ForwardedHeader): string[] {
  const value = joined(headers[header]);
  if (!value) return [];
  if (header === "x-forwarded-for") return value.split(",").map((hop) => hop.trim());
  // for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"
  return value.split(",").map((element) => {
    const pair = element.split(";").map((p) => p.trim()).find((p) => /^for=/i.test(p));
    return pair ? pair.slice(4).replace(/^"|"$/g, "") : "";
  });
}

function joined(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value.join(",") : value ?? "").slice(0, 4096);
}

/** A bare, canonical-enough IP (no brackets, port, zone or IPv4-mapped prefix), else undefined. */
function normalize(raw: string): string | undefined {
  let value = raw.trim().toLowerCase();
  const bracketed = value.match(/^\[([^\]]+)\](?::\d+)?$/);
  if (bracketed) value = bracketed[1];
  else if (/^[\d.]+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(":"));
  value = value.replace(/%.*$/, "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
  return isIP(value) ? value : undefined;
}

function addCidr(list: BlockList, entry: string): void {
  const [address, bits, extra] = entry.trim().split("/");
  const family = isIP(address);
  const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
  const max = family === 4 ? 32 : 128;
  if (!family || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new AegisError(
      "CONFIG_INVALID",
      `cluster.ingress.trusted_proxies: "${entry}" is not an IP address or CIDR`,
    );
  }
  list.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
}

function expandIpv6(address: string): string[] {
  let text = address.replace(/%.*$/, "");
  const v4 = text.match(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) +
      `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].map((group) => parseInt(group, 16).toString(16));
}
