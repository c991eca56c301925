// The caller's side of relay peering: one HTTP/2 session per peer relay (gRPC, h2c or TLS as
// the peer advertises), each call authenticated with a fresh relay token bound to that peer and
// that call. Sessions are closed explicitly (on failure, when idle for PEER_IDLE_MS, when the
// peer is no longer registered, and at shutdown), so the map only holds live peers and a dead
// peer cannot throw from a timer later.
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ToolEvent } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { RelayPeerService } from "../../shared/gen/aegis/edge/v1/relay_peer_pb.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import { AegisError } from "../../shared/errors.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";
import { H2Session } from "../../shared/net/h2_session.ts";
import type { ForwardedCall, RelayPeerLink } from "../app/peer_calls.ts";
import type { RelayRegistry } from "../app/relay_registry.ts";
import type { RelayTokens } from "../app/relay_tokens.ts";

/** How long past the call's deadline a forwarded call may run before the transport ends it. */
const DEADLINE_GRACE_MS = 15_000;
/** A peer session with no call for this long is closed (a new call opens a fresh one). */
// Well under the server's h2_idle_timeout_ms (60 s by default), which resets idle sessions without
// a GOAWAY: a call must never be sent on a session the peer is about to cut.
export const PEER_IDLE_MS = 20_000;

interface Peer {
  manager: H2Session;
  client: Client<typeof RelayPeerService>;
  /** Calls in flight through this session. */
  active: number;
  lastUsed: number;
}

export interface PeerClientOptions {
  idleMs?: number;
  /** How often idle and unregistered peers are looked for; 0 = only when sweep() is called. */
  sweepMs?: number;
  now?: () => number;
  log?: (message: string) => void;
}

type Registry = Pick<RelayRegistry, "endpointOf" | "liveEndpoints">;
type Tokens = Pick<RelayTokens, "issue">;

export class RelayPeerClients implements RelayPeerLink {
  readonly #peers = new Map<string, Peer>();
  readonly #warned = new Set<string>();
  readonly #idleMs: number;
  readonly #now: () => number;
  readonly #log: (message: string) => void;
  #timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly registry: Registry,
    private readonly tokens: Tokens,
    private readonly relayId: string,
    options: PeerClientOptions = {},
  ) {
    this.#idleMs = options.idleMs ?? PEER_IDLE_MS;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? (() => {});
    const sweepMs = options.sweepMs ?? this.#idleMs / 4;
    if (sweepMs > 0) {
      this.#timer = setInterval(() => {
        this.sweep().catch((e) => this.#log(`relay peers: ${(e as Error).message}`));
      }, sweepMs);
      Deno.unrefTimer(this.#timer);
    }
  }

  /** Peer sessions held (for tests and metrics). */
  get size(): number {
    return this.#peers.size;
  }

  /**
   * Closes sessions to peers that had no call for the idle time, and to peers no longer in the
   * registry (a relay that stopped or died) that carry no call. Resolves with how many closed.
   */
  async sweep(): Promise<number> {
    const live = new Set(await this.registry.liveEndpoints());
    const now = this.#now();
    let dropped = 0;
    for (const [endpoint, peer] of [...this.#peers]) {
      if (peer.active > 0) continue;
      if (!live.has(endpoint) || now - peer.lastUsed >= this.#idleMs) {
        this.#drop(endpoint, peer);
        dropped++;
      }
    }
    return dropped;
  }

  async *forward(
    relayId: string,
    call: ForwardedCall,
    signal: AbortSignal,
  ): AsyncGenerator<ToolEvent> {
    const endpoint = await this.registry.endpointOf(relayId);
    if (!endpoint) {
      throw new AegisError("UNREACHABLE", `relay ${relayId} is not running (no live registration)`);
    }
    const token = await this.tokens.issue(this.relayId, relayId, call);
    const peer = this.#peer(endpoint);
    peer.active++;
    try {
      yield* peer.client.forwardCall({
        callId: call.callId,
        nodeId: call.nodeId,
        tool: call.tool,
        argumentsJson: call.argumentsJson,
        deadline: timestampFromDate(call.deadline),
      }, {
        signal,
        headers: { authorization: `Bearer ${token}` },
        timeoutMs: Math.max(1000, call.deadline.getTime() - Date.now() + DEADLINE_GRACE_MS),
      });
    } catch (error) {
      const aegis = fromConnectError(error, `relay ${relayId} (${endpoint})`);
      // A transport failure: the next call gets a fresh session rather than a broken one. A call
      // this side cancelled is not one: the session, and other calls on it, go on.
      const failed = aegis.code === "UNREACHABLE" || aegis.code === "INTERNAL";
      if (failed && !signal.aborted) this.#drop(endpoint, peer);
      throw aegis;
    } finally {
      peer.active--;
      peer.lastUsed = this.#now();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const [endpoint, peer] of [...this.#peers]) this.#drop(endpoint, peer);
  }

  #peer(endpoint: string): Peer {
    const known = this.#peers.get(endpoint);
    if (known) return known;
    const { baseUrl, tls } = parseEndpoint(endpoint);
    if (!tls && !isLoopback(baseUrl) && !this.#warned.has(endpoint)) {
      this.#warned.add(endpoint);
      this.#log(
        `warning: relay peering to ${endpoint} is plaintext: relay tokens and call arguments ` +
          `cross the network unencrypted; set cluster.tls or keep relays on a private network`,
      );
    }
    // A peer that dies without a word (power loss, partition) fails the calls through it within
    // keepaliveMs + keepaliveTimeoutMs; one that exits fails them at once (the socket closes).
    const manager = new H2Session(baseUrl, {
      keepaliveMs: 10_000,
      keepaliveTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      // The sweep closes idle peers (PEER_IDLE_MS); the session's own idle close is a backstop.
      idleCloseMs: 2 * PEER_IDLE_MS,
    });
    const transport = createGrpcTransport({ baseUrl, sessionManager: manager });
    const peer: Peer = {
      manager,
      client: createClient(RelayPeerService, transport),
      active: 0,
      lastUsed: this.#now(),
    };
    this.#peers.set(endpoint, peer);
    return peer;
  }

  #drop(endpoint: string, peer: Peer): void {
    peer.manager.close();
    // A newer session for the same endpoint (after a transport failure) is left alone.
    if (this.#peers.get(endpoint) === peer) this.#peers.delete(endpoint);
  }
}

/** localhost, 127.0.0.0/8 or ::1: plaintext there never leaves the machine. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
