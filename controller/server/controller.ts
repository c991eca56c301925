// Wires the controller together: storage, token authority, domain services, and the one port
// that serves gRPC, gRPC-Web, Connect and REST.
import { AuditLog } from "../app/audit.ts";
import { OPERATOR_CONTEXT } from "../app/identity.ts";
import { VERSION } from "../../shared/version.ts";
import { SecurityContexts } from "../app/security_contexts.ts";
import { ExecutionService } from "../app/executions.ts";
import { EdgeActions } from "../app/edge_actions.ts";
import { hostname } from "node:os";
import { join } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { getRequestListener } from "@hono/node-server";
import { NodeClusterService } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { Health } from "../../shared/gen/grpc/health/v1/health_pb.ts";
import { ensureDir } from "../../shared/fs/atomic.ts";
import { parseEndpointList } from "../../shared/endpoint.ts";
import type { ControllerConfig } from "../config.ts";
import { type Db, openDb } from "../store/db.ts";
import { loadOrCreateSigningKey } from "../app/signing_key.ts";
import { TokenAuthority } from "../app/tokens.ts";
import { ExternalIssuers } from "../app/external_issuers.ts";
import { DEFAULT_ISSUER, trustedIssuers } from "../auth_config.ts";
import { type Clock, systemClock } from "../app/clock.ts";
import { RateLimiter } from "../app/rate_limit.ts";
import { EnrollmentService } from "../app/enrollment.ts";
import { DaemonRepository } from "../app/daemons.ts";
import { NodeAuthenticator } from "../app/node_auth.ts";
import { EdgeHub } from "../app/edge_sessions.ts";
import { ToolCallService } from "../app/tool_calls.ts";
import { RevocationService } from "../app/revocation.ts";
import { KeyRotationService } from "../app/rotation.ts";
import { FleetDispatcher } from "../app/fleet/dispatcher.ts";
import { RelayBus } from "../app/relay_bus.ts";
import { startRelayPeering } from "./relay_peering.ts";
import { defaultAdmission, nodeClusterService } from "../rpc/node_cluster.ts";
import { healthService } from "../rpc/health.ts";
import { decodingErrorOptions } from "../rpc/parse_errors.ts";
import { contextValuesFor } from "../rpc/context.ts";
import { createApi } from "../api/routes.ts";
import { ConsoleSessions } from "../app/console_sessions.ts";
import { HostListings } from "../app/host_listing.ts";
import type { ConsoleDeps } from "../console/deps.ts";
import { deriveOidcStateKey, OidcLogin, oidcProviders } from "../app/oidc_login.ts";
import { listen, type Listener, type RawStreamRoute, type RequestHandler } from "./listener.ts";
import { edgeGrpcRoute } from "./edge_route.ts";
import { connectLimits } from "./limits.ts";
import { addressBucket, ClientAddressResolver } from "./client_address.ts";
import { StreamGate } from "../app/stream_gate.ts";
import { compileConfigRules, TrustedEnrollment } from "../app/trusted_enrollment.ts";
import { ApprovedPatterns } from "../app/approved_patterns.ts";
import { publicBootstrapUrl } from "../app/releases.ts";
import { ReleaseCatalog } from "../app/releases.ts";
import { readCaPem } from "../app/install_scripts.ts";

export interface ControllerOptions {
  config: ControllerConfig;
  dataDir: string;
  log?: (message: string) => void;
  clock?: Clock;
  /** Overrides cluster.cluster_grpc_port (0 picks a free port). */
  port?: number;
}

export interface RunningController {
  port: number;
  publicEndpoint: string;
  relayId: string;
  db: Db;
  tokens: TokenAuthority;
  hub: EdgeHub;
  close(): Promise<void>;
}

export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { config } = options;
  const { limits } = config;
  // Refuses a malformed trusted_proxies entry at start-up, before anything listens.
  const clientAddress = new ClientAddressResolver(
    config.cluster.ingress.trusted_proxies,
    config.cluster.ingress.forwarded_header,
  );
  // Likewise a bad bootstrap.trusted_enrollment pattern or CIDR.
  const trustRules = compileConfigRules(config.bootstrap.trusted_enrollment);
  // Likewise an auth.issuers[].oidc.client_secret_env that is not set.
  const oidcIssuers = oidcProviders(trustedIssuers(config.auth));
  const log = options.log ?? (() => {});
  const clock = options.clock ?? systemClock;
  await ensureDir(options.dataDir, 0o700);

  const signingKey = await loadOrCreateSigningKey(signingKeyPath(config, options.dataDir));
  const contexts = new SecurityContexts(config.security);
  const tokens = new TokenAuthority(
    signingKey,
    config.auth.issuer ?? DEFAULT_ISSUER,
    clock,
    new ExternalIssuers(trustedIssuers(config.auth)),
    contexts,
  );
  const db = await openDb({ dsn: config.postgres.dsn, dataDir: options.dataDir });
  const isServing = async () => {
    try {
      await db.query("SELECT 1");
      return true;
    } catch {
      return false;
    }
  };

  let handler: RequestHandler = () => {};
  let edgeRoute: RawStreamRoute | undefined = undefined; // set once the services exist
  const tls = config.cluster.tls
    ? {
      cert: await Deno.readTextFile(config.cluster.tls.cert_file),
      key: await Deno.readTextFile(config.cluster.tls.key_file),
    }
    : undefined;
  const listener: Listener = await listen({
    host: config.cluster.bind_address,
    port: options.port ?? config.cluster.cluster_grpc_port,
    tls,
    limits,
    clientAddress,
    handler: (req, res) => handler(req, res),
    rawStreams: () => edgeRoute,
  });

  const publicEndpoint = config.cluster.ingress.public_endpoint ??
    (tls ? `${hostname()}:${listener.port}` : `http://127.0.0.1:${listener.port}`);
  parseEndpointList(publicEndpoint); // refuse a malformed ingress.public_endpoint at start-up
  const relayId = config.cluster.node_name ?? `${hostname()}:${listener.port}`;
  const heartbeatIntervalSecs = config.edge.heartbeat_interval_secs;

  const daemons = new DaemonRepository(db, clock);
  const auth = new NodeAuthenticator(db, tokens, clock);
  const approved = new ApprovedPatterns(db);
  const enrollment = new EnrollmentService(
    db,
    tokens,
    new RateLimiter(config.edge.attest_rate_limit_per_min, 60_000, {
      bucket: addressBucket,
      maxKeys: limits.rate_limit_max_keys,
    }),
    auth,
    {
      publicEndpoint,
      enrollmentTtlSecs: config.edge.enrollment_token_ttl_secs,
      nodeTokenTtlSecs: config.edge.node_token_ttl_secs,
      clockSkewLeewaySecs: config.edge.clock_skew_leeway_secs,
      bootstrapUrl: publicBootstrapUrl(config, publicEndpoint),
    },
    clock,
    new TrustedEnrollment(trustRules, approved),
  );
  const hub = new EdgeHub({
    auth,
    daemons,
    clock,
    relayId,
    heartbeatIntervalSecs,
    overlapMs: overlapMs(config),
    log,
  });
  const released = await daemons.releaseRelay(relayId);
  if (released > 0) log(`marked ${released} stream(s) held before the restart as disconnected`);

  const bus = new RelayBus(db, hub, relayId, log);
  await bus.start();
  const peering = await startRelayPeering({
    config,
    port: listener.port,
    db,
    hub,
    daemons,
    signingKey,
    issuer: tokens.issuer,
    relayId,
    clock,
    log,
  });
  const calls = new ToolCallService(db, daemons, hub, relayId, clock, peering.link);
  const revocation = new RevocationService(db, hub, clock, bus);
  const audit = new AuditLog(db, relayId, clock, log);
  const rotation = new KeyRotationService(db, auth, tokens, hub, bus, clock, {
    nodeTokenTtlSecs: config.edge.node_token_ttl_secs,
    overlapMs: overlapMs(config),
    // What a host does with its own credentials is kept as long as operators' actions are.
    audit: {
      log: audit,
      retentionDays: config.security.contexts[OPERATOR_CONTEXT].audit_retention_days,
    },
  });
  await calls.interruptOrphans();
  const fleet = new FleetDispatcher(db, calls, relayId, clock);
  await fleet.interruptOrphans();
  const executions = new ExecutionService(db, contexts, relayId, clock, log);
  await executions.interruptOrphans();
  executions.notifier = bus;
  bus.onCancel = (ids) => executions.abortLocal(ids);
  bus.onReconnect = () => void executions.reconcile().catch(() => {});
  const actions = new EdgeActions({
    calls,
    fleet,
    enrollment,
    revocation,
    daemons,
    executions,
    audit,
    contexts,
    log,
  });
  const bootstrap = {
    catalog: new ReleaseCatalog({
      releasesDir: config.bootstrap.releases_dir,
      pinnedVersion: config.bootstrap.release_version,
    }),
    publicUrl: publicBootstrapUrl(config, publicEndpoint),
    caPem: await readCaPem(config.bootstrap.ca_file),
    log,
  };
  const consoleSessions = new ConsoleSessions(db, tokens, clock);
  const consoleDeps: ConsoleDeps = {
    sessions: consoleSessions,
    daemons,
    hostListings: new HostListings(db, heartbeatIntervalSecs, clock),
    enrollment,
    calls,
    revocation,
    fleet,
    actions,
    db,
    clock,
    heartbeatIntervalSecs,
    enrollmentTtlSecs: config.edge.enrollment_token_ttl_secs,
    log,
    viaTrustedProxy: (peer) => clientAddress.isTrustedProxy(clientAddress.socketAddress(peer)),
    oidc: oidcIssuers.length === 0 ? undefined : new OidcLogin(
      oidcIssuers,
      deriveOidcStateKey(signingKey.challengeKey),
      db,
      consoleSessions,
      clock,
    ),
  };
  const api = createApi({
    tokens,
    enrollment,
    approved,
    daemons,
    calls,
    revocation,
    fleet,
    actions,
    executions,
    audit,
    db,
    clock,
    heartbeatIntervalSecs,
    role: config.cluster.role,
    isServing,
    log,
    maxBodyBytes: limits.max_rest_body_bytes,
    bootstrap,
    console: consoleDeps,
    mcp: {
      tokens,
      actions,
      executions,
      daemons,
      calls,
      fleet,
      contexts,
      clock,
      heartbeatIntervalSecs,
      version: VERSION,
      publicUrl: config.bootstrap.public_url,
      authorizationServers: trustedIssuers(config.auth).map((issuer) => issuer.issuer),
      maxBodyBytes: limits.max_rest_body_bytes,
      log,
    },
  });
  const fallback = getRequestListener(api.fetch);
  const admission = defaultAdmission(limits);
  edgeRoute = edgeGrpcRoute({ hub, admission, log }, limits.max_message_bytes);
  handler = connectNodeAdapter({
    routes(router) {
      router.service(
        NodeClusterService,
        nodeClusterService({
          enrollment,
          hub,
          auth,
          daemons,
          revocation,
          rotation,
          clock,
          heartbeatIntervalSecs,
          log,
          admission,
        }),
      );
      peering.routes(router);
      router.service(
        Health,
        healthService(
          isServing,
          new StreamGate(
            "health watch streams",
            limits.watch_streams_per_address,
            limits.watch_streams_max,
          ),
        ),
      );
    },
    ...connectLimits(limits),
    // Undecodable requests answer INVALID_ARGUMENT, on every service routed above.
    ...decodingErrorOptions(),
    contextValues: contextValuesFor(clientAddress),
    fallback: fallback as never,
  }) as RequestHandler;

  const pruning = setInterval(() => {
    enrollment.pruneExpired().catch(() => {});
    audit.prune(clock()).catch((error) => log(`audit pruning failed: ${error?.message}`));
    executions.prune(clock()).catch((error) => log(`execution pruning failed: ${error?.message}`));
  }, 60_000);
  Deno.unrefTimer(pruning);
  // Executions past their deadline end with everything under them; cancellations whose relay
  // bus signal was lost take effect here at the latest.
  const sweeping = setInterval(
    () => executions.sweep().catch((error) => log(`execution sweep failed: ${error?.message}`)),
    EXECUTION_SWEEP_MS,
  );
  Deno.unrefTimer(sweeping);

  return {
    port: listener.port,
    publicEndpoint,
    relayId,
    db,
    tokens,
    hub,
    async close() {
      clearInterval(pruning);
      clearInterval(sweeping);
      hub.drain(Math.min(30_000, hub.size * 10));
      try {
        await bus.stop().catch(() => {});
        await peering.close();
        await listener.close(1000);
      } finally {
        // Every stream is gone (or the process is going): their records in one statement (the
        // hub stopped writing them one by one at drain), then whatever heartbeats, disconnects
        // and call history are still queued, before the database goes.
        await daemons.releaseRelay(relayId).catch((error) =>
          log(`marking this relay's hosts disconnected failed: ${(error as Error).message}`)
        );
        await Promise.all([
          daemons.drain(),
          calls.flushHistory().catch(() => {}),
          executions.drain().catch(() => {}),
          (async () => {
            actions.flushRefusals();
            await audit.drain();
          })().catch(() => {}),
        ]);
        await db.close();
      }
    },
  };
}

/** How often running executions are checked against their deadlines and the database. */
const EXECUTION_SWEEP_MS = 5_000;

export function signingKeyPath(config: ControllerConfig, dataDir: string): string {
  return config.auth.signing_key_file ?? join(dataDir, "signing-key.jwk");
}

/** Old credentials stay good on a live stream this long after a rotation: several heartbeats. */
function overlapMs(config: ControllerConfig): number {
  return Math.max(60, 3 * config.edge.heartbeat_interval_secs, config.edge.key_overlap_secs) * 1000;
}
