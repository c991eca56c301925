// Wires relay peering: this relay's registration (so peers can reach it), the clients it uses
// to forward calls to peers, and the RelayPeerService it serves to them.
import { hostname } from "node:os";
import type { ConnectRouter } from "@connectrpc/connect";
import { RelayPeerService } from "../../shared/gen/aegis/edge/v1/relay_peer_pb.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import type { ControllerConfig } from "../config.ts";
import type { Db } from "../store/db.ts";
import type { Clock } from "../app/clock.ts";
import type { DaemonRepository } from "../app/daemons.ts";
import type { EdgeHub } from "../app/edge_sessions.ts";
import type { SigningKey } from "../app/signing_key.ts";
import { PeerCallService } from "../app/peer_calls.ts";
import { RelayRegistry } from "../app/relay_registry.ts";
import { RelayTokens } from "../app/relay_tokens.ts";
import { isLoopback, RelayPeerClients } from "../rpc/relay_peer_client.ts";
import { relayPeerService } from "../rpc/relay_peer.ts";

export interface RelayPeering {
  link: RelayPeerClients;
  routes(router: ConnectRouter): void;
  close(): Promise<void>;
}

export async function startRelayPeering(deps: {
  config: ControllerConfig;
  port: number;
  db: Db;
  hub: EdgeHub;
  daemons: DaemonRepository;
  signingKey: SigningKey;
  issuer: string;
  relayId: string;
  clock: Clock;
  log: (message: string) => void;
}): Promise<RelayPeering> {
  const endpoint = peerEndpoint(deps.config, deps.port);
  // Refuse a malformed cluster.peer_endpoint at start-up, and say so when peers would reach this
  // relay in plaintext over a network: relay tokens and call arguments would cross it in clear.
  const parsed = parseEndpoint(endpoint);
  if (!parsed.tls && !isLoopback(parsed.baseUrl)) {
    deps.log(
      `warning: relay peering is plaintext (${endpoint}): peers send relay tokens and tool-call ` +
        `arguments unencrypted; enable cluster.tls or keep relays on a private network`,
    );
  }
  const registry = new RelayRegistry(deps.db, deps.relayId, endpoint, deps.clock, deps.log);
  await registry.start();
  const tokens = new RelayTokens(deps.signingKey, deps.issuer, deps.clock);
  const link = new RelayPeerClients(registry, tokens, deps.relayId, { log: deps.log });
  const calls = new PeerCallService(deps.hub, deps.daemons, deps.relayId, deps.db, deps.clock);
  return {
    link,
    routes: (router) =>
      router.service(
        RelayPeerService,
        relayPeerService({ calls, tokens, relayId: deps.relayId, log: deps.log }),
      ),
    async close() {
      link.close();
      await registry.stop().catch(() => {});
    },
  };
}

/** cluster.peer_endpoint, else the bind address and port (TLS when the port serves TLS). */
function peerEndpoint(config: ControllerConfig, port: number): string {
  if (config.cluster.peer_endpoint) return config.cluster.peer_endpoint;
  const bind = config.cluster.bind_address;
  const host = bind === "0.0.0.0" || bind === "::" ? hostname() : bind;
  const hostPort = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return config.cluster.tls ? `https://${hostPort}` : `http://${hostPort}`;
}
