// NodeClusterService over Connect: a thin adapter from protobuf messages to the domain services.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type EdgeUpstream,
  NodeClusterService,
  NodeRole,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import type { Enrolled, EnrollmentService } from "../app/enrollment.ts";
import type { EdgeHub } from "../app/edge_sessions.ts";
import type { NodeAuthenticator } from "../app/node_auth.ts";
import { authView, type DaemonRepository, displayStatus, effectiveStatus } from "../app/daemons.ts";
import type { Clock } from "../app/clock.ts";
import type { RevocationService } from "../app/revocation.ts";
import type { KeyRotationService } from "../app/rotation.ts";
import { StreamGate } from "../app/stream_gate.ts";
import { DEFAULT_LIMITS } from "../server/limits.ts";
import { prefixBucket } from "../server/client_address.ts";
import { remoteAddr, trustStream } from "./context.ts";
import { type EdgeAdmission, serveEdgeStream } from "./edge_stream.ts";
import { requireBounded, requirePublicKey } from "./bounds.ts";
import { guarded, type Log } from "./boundary.ts";

export interface NodeClusterDeps {
  enrollment: EnrollmentService;
  hub: EdgeHub;
  auth: NodeAuthenticator;
  daemons: DaemonRepository;
  revocation: RevocationService;
  rotation: KeyRotationService;
  clock: Clock;
  heartbeatIntervalSecs: number;
  log: Log;
  /** ConnectEdge streams not yet authenticated: the caps, and how long one may stay so. */
  admission?: EdgeAdmission;
}

/** The admission a controller without a `limits:` section gets. */
export function defaultAdmission(limits = DEFAULT_LIMITS): EdgeAdmission {
  return {
    gate: new StreamGate(
      "unauthenticated ConnectEdge streams",
      limits.unauthenticated_streams_per_address,
      limits.unauthenticated_streams_max,
      {
        // Keys are address buckets ("2001:db8:1:2::/64" or an IPv4 address).
        prefixOf: (key) => prefixBucket(key.replace(/\/\d+$/, "")),
        perPrefixMax: limits.unauthenticated_streams_per_prefix,
        evictableAfterMs: limits.unauthenticated_stream_evictable_after_ms,
        slotDeadlineMs: limits.edge_auth_deadline_ms,
      },
    ),
    deadlineMs: limits.edge_auth_deadline_ms,
  };
}

export function nodeClusterService(
  deps: NodeClusterDeps,
): Partial<ServiceImpl<typeof NodeClusterService>> {
  const { log } = deps;
  const admission = deps.admission ?? defaultAdmission();
  return {
    attestNode: guarded(log, async (request, ctx: HandlerContext) => {
      if (request.role !== NodeRole.EDGE) {
        throw new AegisError("INVALID_ARGUMENT", "only role EDGE may attest on this endpoint");
      }
      requirePublicKey(request.publicKey);
      requireBounded("hostname", request.hostname);
      requireBounded("os", request.os);
      requireBounded("arch", request.arch);
      requireBounded("agent_version", request.agentVersion);
      requireBounded("node_token", request.nodeToken);
      const challenge = await deps.enrollment.attest({
        publicKey: request.publicKey,
        hostname: request.hostname,
        os: request.os,
        arch: request.arch,
        clientTime: request.clientTime ? timestampDate(request.clientTime) : undefined,
        nodeToken: request.nodeToken || undefined,
        remoteAddr: remoteAddr(ctx),
      });
      return {
        challengeId: challenge.challengeId,
        nonce: challenge.nonce,
        expiresAt: timestampFromDate(challenge.expiresAt),
        serverTime: timestampFromDate(challenge.serverTime),
      };
    }),

    challengeNode: guarded(log, async (request, ctx: HandlerContext) => {
      if (request.proof.case === "nodeToken") {
        const node = await deps.enrollment.reattest({
          challengeId: request.challengeId,
          signature: request.signature,
          nodeToken: request.proof.value,
        });
        const issued = await deps.rotation.refresh(node);
        log(`node ${node.nodeId} refreshed its token`);
        return {
          nodeId: node.nodeId,
          tenantId: node.tenantId,
          nodeSecurityToken: issued.token,
          tokenExpiresAt: timestampFromDate(issued.expiresAt),
        };
      }
      if (request.proof.case === "trusted" && request.proof.value) {
        const enrolled = await deps.enrollment.enrollTrusted({
          challengeId: request.challengeId,
          signature: request.signature,
          remoteAddr: remoteAddr(ctx),
        }).catch((error) => {
          // Refusals are audited too: who tried, from where, and which check failed.
          if (error instanceof AegisError && error.code === "ENROLL_NOT_TRUSTED") {
            log(
              `trusted enrollment from ${remoteAddr(ctx)} refused ` +
                `(${error.details.failed_check}): ${error.message}`,
            );
          }
          throw error;
        });
        log(
          `node ${enrolled.nodeId} enrolled in tenant ${enrolled.tenantId} without a token ` +
            `(trusted enrollment, ${enrolled.rule}, from ${remoteAddr(ctx)})`,
        );
        return await answerEnrolled(deps, enrolled);
      }
      if (request.proof.case !== "bootstrapProof") {
        throw new AegisError(
          "INVALID_ARGUMENT",
          "ChallengeNode needs an enrollment token, a node token or trusted: true",
        );
      }
      const enrolled = await deps.enrollment.enroll({
        challengeId: request.challengeId,
        signature: request.signature,
        enrollmentToken: request.proof.value,
      });
      log(`node ${enrolled.nodeId} enrolled in tenant ${enrolled.tenantId}`);
      return await answerEnrolled(deps, enrolled);
    }),

    connectEdge(requests: AsyncIterable<EdgeUpstream>, ctx: HandlerContext) {
      // gRPC-Web and the Connect protocol; daemons' gRPC streams take the lean path (grpc_bidi.ts).
      return serveEdgeStream({ hub: deps.hub, admission, log }, requests, {
        remoteAddr: remoteAddr(ctx),
        trust: () => trustStream(ctx),
        get aborted() {
          return ctx.signal.aborted;
        },
      });
    },

    rotateEdgeKey: guarded(log, async (envelope) => {
      const issued = await deps.rotation.rotate(envelope);
      log(`a node rotated its key to ${issued.fingerprint}`);
      return {
        nodeSecurityToken: issued.token,
        tokenExpiresAt: timestampFromDate(issued.expiresAt),
        keyFingerprint: issued.fingerprint,
      };
    }),

    deregisterNode: guarded(log, async (envelope) => {
      const { node } = await deps.auth.openUnary(envelope, "deregister");
      await deps.revocation.revoke(node.nodeId, "logout");
      log(`node ${node.nodeId} logged out (revoked)`);
      return {};
    }),

    describeNode: guarded(log, async (envelope) => {
      const { node } = await deps.auth.openUnary(envelope, "describe");
      const record = await deps.daemons.require(node.nodeId);
      const now = deps.clock();
      const caps = record.capabilities;
      const auth = authView(record, now);
      return {
        nodeId: record.node_id,
        tenantId: record.tenant_id,
        name: record.name,
        status: displayStatus(effectiveStatus(record, deps.heartbeatIntervalSecs, now)),
        since: timestampFromDate(record.status_since),
        endpoint: record.endpoint,
        lastHeartbeatAt: record.last_heartbeat_at
          ? timestampFromDate(record.last_heartbeat_at)
          : undefined,
        capabilities: {
          os: caps.os ?? "",
          arch: caps.arch ?? "",
          localTools: caps.local_tools ?? [],
          mountPoints: caps.mount_points ?? [],
          hostname: caps.hostname ?? "",
          agentVersion: caps.agent_version ?? "",
          maxConcurrentCalls: caps.max_concurrent_calls ?? 0,
        },
        labels: record.labels,
        tags: record.tags,
        keyFingerprint: record.key_fingerprint,
        tokenExpiresAt: timestampFromDate(new Date(node.claims.exp * 1000)),
        serverTime: timestampFromDate(now),
        authState: auth.state,
        authDetail: auth.detail,
        report: {
          lastError: record.last_error ?? "",
          lastErrorAt: record.last_error_at ? timestampFromDate(record.last_error_at) : undefined,
          failures: record.connect_failures,
        },
      };
    }),
  };
}

/** Revokes the nodes an enrollment replaced (same key) and answers with the new node. */
async function answerEnrolled(deps: NodeClusterDeps, enrolled: Enrolled) {
  // Already revoked in the enrollment's transaction; this drops their live streams too.
  for (const replaced of enrolled.replacedNodeIds) {
    await deps.revocation.revoke(replaced, "replaced");
    deps.log(`node ${replaced} was replaced by ${enrolled.nodeId} (same key) and revoked`);
  }
  return {
    nodeId: enrolled.nodeId,
    tenantId: enrolled.tenantId,
    nodeName: enrolled.nodeName,
    nodeSecurityToken: enrolled.token,
    tokenExpiresAt: timestampFromDate(enrolled.tokenExpiresAt),
    endpoint: enrolled.endpoint,
  };
}
