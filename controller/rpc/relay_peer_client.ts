// The caller's side of relay peering: one HTTP/2 session per peer relay (gRPC, h2c or TLS as
// the peer advertises), each call authenticated with a fresh relay token. Sessions are closed
// explicitly (on failure and at shutdown), so a dead peer cannot throw from a timer later.
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ToolEvent } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { RelayPeerService } from "../../shared/gen/aegis/edge/v1/relay_peer_pb.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import { AegisError } from "../../shared/errors.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";
import type { ForwardedCall, RelayPeerLink } from "../app/peer_calls.ts";
import type { RelayRegistry } from "../app/relay_registry.ts";
import type { RelayTokens } from "../app/relay_tokens.ts";

/** How long past the call's deadline a forwarded call may run before the transport ends it. */
const DEADLINE_GRACE_MS = 15_000;

interface Peer {
  manager: Http2SessionManager;
  client: Client<typeof RelayPeerService>;
}

export class RelayPeerClients implements RelayPeerLink {
  readonly #peers = new Map<string, Peer>();

  constructor(
    private readonly registry: RelayRegistry,
    private readonly tokens: RelayTokens,
    private readonly relayId: string,
  ) {}

  async *forward(
    relayId: string,
    call: ForwardedCall,
    signal: AbortSignal,
  ): AsyncGenerator<ToolEvent> {
    const endpoint = await this.registry.endpointOf(relayId);
    if (!endpoint) {
      throw new AegisError("UNREACHABLE", `relay ${relayId} is not running (no live registration)`);
    }
    const peer = this.#peer(endpoint);
    const token = await this.tokens.issue(this.relayId);
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
      // A transport failure: the next call gets a fresh session rather than a broken one.
      if (aegis.code === "UNREACHABLE" || aegis.code === "INTERNAL") this.#drop(endpoint);
      throw aegis;
    }
  }

  close(): void {
    for (const endpoint of [...this.#peers.keys()]) this.#drop(endpoint);
  }

  #peer(endpoint: string): Peer {
    const known = this.#peers.get(endpoint);
    if (known) return known;
    const { baseUrl } = parseEndpoint(endpoint);
    const manager = new Http2SessionManager(baseUrl, {
      pingIntervalMs: 10_000,
      pingTimeoutMs: 10_000,
      pingIdleConnection: false,
    });
    const transport = createGrpcTransport({ baseUrl, sessionManager: manager });
    const peer = { manager, client: createClient(RelayPeerService, transport) };
    this.#peers.set(endpoint, peer);
    return peer;
  }

  #drop(endpoint: string): void {
    this.#peers.get(endpoint)?.manager.abort();
    this.#peers.delete(endpoint);
  }
}
