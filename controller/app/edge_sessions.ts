// The live ConnectEdge streams this process holds. A session starts with a server nonce; the
// node's Hello must name it with seq 1, and every later envelope must carry seq+1, so nothing
// captured from one stream can be replayed on this one or another.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type EdgeDownstream,
  EdgeDownstreamSchema,
  type NodeEnvelopePayload,
  type SealNodeEnvelope,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { AsyncQueue } from "../../shared/async_queue.ts";
import { constantTimeEqual, randomBytes } from "../../shared/crypto/encoding.ts";
import { openEnvelope } from "../../shared/crypto/envelope.ts";
import type { AuthenticatedNode, NodeAuthenticator } from "./node_auth.ts";
import type { DaemonRepository } from "./daemons.ts";
import type { Clock } from "./clock.ts";
import { CallRegistry } from "./call_registry.ts";

export type Logger = (message: string) => void;

export interface SessionDeps {
  auth: NodeAuthenticator;
  daemons: DaemonRepository;
  clock: Clock;
  relayId: string;
  heartbeatIntervalSecs: number;
  log: Logger;
}

export class EdgeHub {
  readonly #sessions = new Map<string, EdgeSession>();
  readonly calls = new CallRegistry();

  constructor(readonly deps: SessionDeps) {}

  open(remoteAddr: string): EdgeSession {
    return new EdgeSession(this, remoteAddr);
  }

  get(nodeId: string): EdgeSession | undefined {
    return this.#sessions.get(nodeId);
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** A node opening a second stream replaces its first: that is a reconnect. */
  register(session: EdgeSession, nodeId: string): void {
    const previous = this.#sessions.get(nodeId);
    this.#sessions.set(nodeId, session);
    if (previous && previous !== session) {
      previous.goaway("REPLACED", "a newer stream from this node took over", 0);
    }
  }

  unregister(session: EdgeSession, nodeId: string): boolean {
    if (this.#sessions.get(nodeId) !== session) return false;
    this.#sessions.delete(nodeId);
    return true;
  }

  /** Asks every daemon to come back later, staggered so they do not all return at once. */
  drain(spreadMs: number): void {
    let i = 0;
    const count = Math.max(1, this.#sessions.size);
    for (const session of [...this.#sessions.values()]) {
      session.goaway(
        "SHUTDOWN",
        "the controller is restarting",
        Math.round((spreadMs * i++) / count),
      );
    }
  }
}

export class EdgeSession {
  readonly nonce = randomBytes(16);
  readonly outbox = new AsyncQueue<EdgeDownstream>();
  #node?: AuthenticatedNode;
  #token = "";
  #seq = 0n;
  #watchdog?: ReturnType<typeof setTimeout>;
  #revalidateAt?: number;
  #silenceMs: number;

  constructor(private readonly hub: EdgeHub, readonly remoteAddr: string) {
    this.#silenceMs = 3 * hub.deps.heartbeatIntervalSecs * 1000;
    this.send({
      case: "opened",
      value: { streamNonce: this.nonce, serverTime: timestampFromDate(hub.deps.clock()) } as never,
    });
    this.#armWatchdog();
  }

  get node(): AuthenticatedNode | undefined {
    return this.#node;
  }

  send(body: EdgeDownstream["body"]): boolean {
    return this.outbox.push(create(EdgeDownstreamSchema, { body }));
  }

  async receive(envelope: SealNodeEnvelope | undefined): Promise<void> {
    if (!envelope) throw new AegisError("INVALID_ARGUMENT", "a stream message without an envelope");
    const payload = await this.#open(envelope);
    this.#armWatchdog();
    const { daemons, clock, relayId } = this.hub.deps;
    const body = payload.body;
    switch (body.case) {
      case "hello": {
        const caps = body.value.capabilities;
        const interval = body.value.heartbeatIntervalSecs || this.hub.deps.heartbeatIntervalSecs;
        this.#silenceMs = 3 * interval * 1000;
        await daemons.markConnected(payload.nodeId, {
          relayId,
          remoteAddr: this.remoteAddr,
          labels: { ...body.value.labels },
          capabilities: {
            os: caps?.os,
            arch: caps?.arch,
            hostname: caps?.hostname,
            local_tools: caps?.localTools ?? [],
            mount_points: caps?.mountPoints ?? [],
            agent_version: caps?.agentVersion,
            max_concurrent_calls: caps?.maxConcurrentCalls,
          },
        });
        this.hub.register(this, payload.nodeId);
        this.hub.deps.log(`node ${payload.nodeId} connected from ${this.remoteAddr}`);
        this.send({
          case: "helloAck",
          value: {
            nodeId: payload.nodeId,
            tenantId: this.#node!.tenantId,
            serverTime: timestampFromDate(clock()),
            heartbeatIntervalSecs: interval,
          } as never,
        });
        return;
      }
      case "toolEvent":
        this.hub.calls.deliver(payload.nodeId, body.value);
        return;
      case "heartbeat":
        await daemons.heartbeat(payload.nodeId);
        this.send({
          case: "heartbeatAck",
          value: { serverTime: timestampFromDate(clock()) } as never,
        });
        return;
      default:
        throw new AegisError(
          "INVALID_ARGUMENT",
          `unexpected stream message ${body.case ?? "(empty)"}`,
        );
    }
  }

  /** Called by the transport when the stream is over, whichever side ended it. */
  async closed(): Promise<void> {
    clearTimeout(this.#watchdog);
    this.outbox.close();
    const node = this.#node;
    if (node && this.hub.unregister(this, node.nodeId)) {
      this.hub.calls.failNode(node.nodeId, `host ${node.nodeId} disconnected during the call`);
      await this.hub.deps.daemons.markDisconnected(node.nodeId, this.hub.deps.relayId);
      this.hub.deps.log(`node ${node.nodeId} disconnected`);
    }
  }

  goaway(code: string, message: string, retryAfterMs: number): void {
    this.send({ case: "goaway", value: { code, message, retryAfterMs } as never });
    this.outbox.close();
  }

  /** Ends the stream with an error the daemon will see as typed. */
  fail(error: Error): void {
    clearTimeout(this.#watchdog);
    this.outbox.fail(error);
  }

  /**
   * The node's key or token was replaced (rotation, refresh). This stream may go on with the old
   * credentials for the overlap window, so nothing in flight is disturbed; after it, the old
   * ones are checked again, which fails, and the stream ends.
   */
  credentialsReplaced(overlapMs: number): void {
    this.#revalidateAt = Date.now() + overlapMs;
  }

  async #open(envelope: SealNodeEnvelope): Promise<NodeEnvelopePayload> {
    const stale = this.#revalidateAt !== undefined && Date.now() >= this.#revalidateAt;
    if (!this.#node || envelope.securityToken !== this.#token || stale) {
      this.#revalidateAt = undefined;
      // First message, or a new token after a rotation or refresh: authenticate in full.
      const node = await this.hub.deps.auth.authenticateToken(envelope.securityToken);
      if (this.#node && node.nodeId !== this.#node.nodeId) {
        throw new AegisError("SIGNATURE_INVALID", "a stream cannot change node");
      }
      this.#node = node;
      this.#token = envelope.securityToken;
    }
    const payload = openEnvelope(envelope, this.#node.publicKey);
    if (payload.nodeId !== this.#node.nodeId) {
      throw new AegisError(
        "SIGNATURE_INVALID",
        "the envelope names a different node than its token",
      );
    }
    if (!constantTimeEqual(payload.streamNonce, this.nonce) || payload.seq !== this.#seq + 1n) {
      throw new AegisError(
        "REPLAYED",
        "the envelope does not belong to this stream or is out of order",
      );
    }
    if (this.#seq === 0n && payload.body.case !== "hello") {
      throw new AegisError("INVALID_ARGUMENT", "the first stream message must be Hello");
    }
    this.#seq = payload.seq;
    return payload;
  }

  #armWatchdog(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => {
      this.hub.deps.log(`stream from ${this.#node?.nodeId ?? this.remoteAddr} silent; dropping it`);
      this.goaway("SILENT", "no message within three heartbeat intervals", 0);
    }, this.#silenceMs);
  }
}
