// Every bound the controller puts on what a peer may send before and after it authenticates, in
// one place: the `limits:` section of aegis-config.yaml. The listener (HTTP/1.1, HTTP/2, TLS),
// the Connect adapter (every RPC service, the relay-peer one included), the REST API and the
// ConnectEdge admission gate all read their numbers from here.
import { z } from "zod";

const KIB = 1024;
const MIB = 1024 * KIB;

export const LimitsSchema = z.object({
  /**
   * Largest RPC message: a unary request, or each message of a stream, as it arrives. The daemon
   * sends tool output in events of at most ~320 KiB, so 1 MiB leaves room.
   */
  max_message_bytes: z.number().int().min(64 * KIB).max(64 * MIB).default(MIB),
  /** Largest REST request body. */
  max_rest_body_bytes: z.number().int().min(KIB).max(64 * MIB).default(MIB),
  /** HTTP/1.1 header block and HTTP/2 header list, each. */
  max_header_bytes: z.number().int().min(4 * KIB).max(MIB).default(16 * KIB),
  /** HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  h2_max_concurrent_streams: z.number().int().min(1).max(100_000).default(256),
  /** nghttp2's per-connection buffer budget, in MB (Node's default is 10). */
  h2_max_session_memory_mb: z.number().int().min(1).max(1024).default(10),
  /**
   * Open TCP connections, all peers together; more are closed on arrival. One process holds
   * 15,000 idle edge streams at about 40 KiB each, so the default leaves room for that fleet and
   * its operators; each connection is a file descriptor (the unit sets LimitNOFILE=65536).
   */
  max_connections: z.number().int().min(1).default(20_000),
  /**
   * Open TCP connections from one socket address (IPv6: per /64); trusted proxies are exempt.
   * Beyond 90% of max_connections only addresses with no open connection get in (the reserve),
   * so one address or a few cannot lock the fleet out. Raise it for large fleets behind one NAT.
   */
  max_connections_per_address: z.number().int().min(1).default(256),
  /** A new connection must finish its TLS handshake or show its protocol (preface) by then. */
  handshake_timeout_ms: z.number().int().min(100).default(10_000),
  /** An HTTP/2 connection (plaintext or TLS) that has opened no stream by then is closed. */
  h2_first_stream_timeout_ms: z.number().int().min(100).default(30_000),
  /**
   * An HTTP/2 connection with no open stream for this long is closed (a daemon always holds its
   * ConnectEdge stream open, so it is never idle).
   */
  h2_idle_timeout_ms: z.number().int().min(100).default(60_000),
  /**
   * An HTTP/2 request body must arrive whole by then, unless the stream has authenticated (a
   * ConnectEdge stream after its Hello); otherwise its connection is cut and its buffers freed.
   * Never shorter than edge_auth_deadline_ms + 2 s, so a stream without a Hello is told why.
   */
  h2_request_body_timeout_ms: z.number().int().min(100).default(15_000),
  /**
   * Request-body bytes held for HTTP/2 streams that have neither finished their body nor
   * authenticated, per client address (IPv6: per /64) and in all; a stream that would pass
   * either is reset (ENHANCE_YOUR_CALM). Past the global bound, a stream still holding at most
   * 64 KiB (any real unary request) may go on up to twice the bound.
   */
  /**
   * HTTP/2 requests from one client address whose body has not ended and that have not
   * authenticated; more are answered RESOURCE_EXHAUSTED (429) at once, twice as many cut the
   * connection. Each open request costs memory of its own, body or not.
   */
  unauthenticated_requests_per_address: z.number().int().min(1).default(128),
  unauthenticated_body_bytes_per_address: z.number().int().min(64 * KIB).default(8 * MIB),
  unauthenticated_body_bytes_max: z.number().int().min(MIB).default(64 * MIB),
  /** HTTP/1.1: the whole header block, and the whole request, must arrive by then. */
  headers_timeout_ms: z.number().int().min(100).default(10_000),
  request_timeout_ms: z.number().int().min(100).default(30_000),
  /** A ConnectEdge stream must authenticate (a valid Hello) by then, or it is ended. */
  edge_auth_deadline_ms: z.number().int().min(100).default(10_000),
  /** ConnectEdge streams not yet authenticated, per client address (IPv6: per /64) and in all. */
  unauthenticated_streams_per_address: z.number().int().min(1).default(16),
  /** The same, per wider prefix (IPv4 /24, IPv6 /48). */
  unauthenticated_streams_per_prefix: z.number().int().min(1).default(128),
  /**
   * When all are taken, a newcomer from a less crowded prefix evicts the oldest stream of the
   * prefix holding the most, so a daemon from a fresh address always gets a slot.
   */
  unauthenticated_streams_max: z.number().int().min(1).default(1024),
  /** Only a stream waiting this long, and that has sent no Hello yet, can be evicted so. */
  unauthenticated_stream_evictable_after_ms: z.number().int().min(0).default(1000),
  /** Anonymous long-lived streams (grpc.health.v1 Watch), per client address and in all. */
  watch_streams_per_address: z.number().int().min(1).default(8),
  watch_streams_max: z.number().int().min(1).default(256),
  /** Attestation rate-limit buckets kept; the oldest go first beyond this. */
  rate_limit_max_keys: z.number().int().min(100).default(100_000),
}).strict();

export type Limits = z.infer<typeof LimitsSchema>;

export const DEFAULT_LIMITS: Limits = LimitsSchema.parse({});

/**
 * The options every `connectNodeAdapter` on the controller's port takes (NodeClusterService,
 * Health, relay peering). Compressed requests are refused outright: nothing we ship compresses,
 * and a 2 MB gzip body can carry a 512 MB message; readMaxBytes bounds each message on the wire
 * (gRPC length prefix, Connect Content-Length) before any of it is decoded.
 */
export function connectLimits(limits: Limits = DEFAULT_LIMITS) {
  return {
    readMaxBytes: limits.max_message_bytes,
    acceptCompression: [],
  };
}
