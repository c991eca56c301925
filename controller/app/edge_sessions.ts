// The live ConnectEdge streams this process holds. A session starts with a server nonce; the
// node's Hello must name it with seq 1, and every later envelope must carry seq+1, so nothing
// captured from one stream can be replayed on this one or another.
//
// A stream is only as good as the node's current record. It is registered before its record is
// marked connected (a revocation that commits meanwhile is seen by that update), every held
// stream is checked against the database at least once per heartbeat interval (a revocation
// whose notification was lost is seen then), and a stream ended for cause takes no more calls.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type EdgeDownstream,
  EdgeDownstreamSchema,
  type NodeEnvelopePayload,
  type SealNodeEnvelope,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError, type ErrorCode } from "../../shared/errors.ts";
import { CappedQueue } from "../../shared/bounded_queue.ts";
import { constantTimeEqual, randomBytes } from "../../shared/crypto/encoding.ts";
import { openEnvelope } from "../../shared/crypto/envelope.ts";
import type { AuthenticatedNode, NodeAuthenticator } from "./node_auth.ts";
import { type DaemonRepository, streamKey } from "./daemons.ts";
import type { Clock } from "./clock.ts";
import { CallRegistry } from "./call_registry.ts";
import { checkHello } from "./hello_limits.ts";
import { boundReport } from "./hello_report.ts";
import { judgeStream, overlapLeftMs, type StreamCredentials } from "./session_validity.ts";

export type Logger = (message: string) => void;

export interface SessionDeps {
  auth: NodeAuthenticator;
  daemons: DaemonRepository;
  clock: Clock;
  relayId: string;
  heartbeatIntervalSecs: number;
  /** How long replaced credentials stay good on a live stream; as NodeAuthenticator's. */
  overlapMs?: number;
  log: Logger;
}

const DEFAULT_OVERLAP_MS = 5 * 60_000;
/**
 * What may wait in a stream's outbox for a node that does not read it. Past either bound the
 * stream ends (RATE_LIMITED, reason outbox_overflow): a node cannot make the controller hold
 * what it sends it (heartbeat acks at line rate, calls) without limit.
 */
export const OUTBOX_MAX_ITEMS = 1024;
export const OUTBOX_MAX_BYTES = 16 * 1024 * 1024;
/** The least time streams are kept while their credentials cannot be checked. */
const UNVERIFIED_STREAM_MIN_MS = 60_000;

/** Orphaned call ids a stream remembers having cancelled (oldest forgotten first). */
const MAX_ORPHANS_REMEMBERED = 1024;
/** Running call ids read from one heartbeat (a host runs at most 1024 calls at once). */
const MAX_REPORTED_CALLS = 1024;
const ORPHAN_CANCELS_PER_HEARTBEAT = 32;

/** A node's heartbeats update its record about once a second at most (each is still acked). */
export const HEARTBEAT_WRITE_INTERVAL_MS = 900;

export class EdgeHub {
  readonly #sessions = new Map<string, EdgeSession>();
  readonly calls = new CallRegistry();
  #sweepTimer?: ReturnType<typeof setInterval>;
  #sweeping?: Promise<number>;
  #sweepAgain = false;
  /** When every held stream was last checked against the database. */
  #verifiedAt = Date.now();
  #stopping = false;

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
    this.#startSweeping();
  }

  unregister(session: EdgeSession, nodeId: string): boolean {
    if (this.#sessions.get(nodeId) !== session) return false;
    this.#sessions.delete(nodeId);
    if (this.#sessions.size === 0) this.#stopSweeping();
    return true;
  }

  /** Ends the node's stream on this process at once (revocation); false when none is here. */
  end(nodeId: string, error: AegisError): boolean {
    const session = this.#sessions.get(nodeId);
    session?.end(error);
    return session !== undefined;
  }

  /**
   * Checks every held stream against the node's record in one batched read and ends those that
   * no longer stand. Runs once per heartbeat interval while any stream is held, and at once when
   * the notification channel was lost and is back. A request during a sweep runs one more after
   * it, whose read starts after the request. Resolves with the number of streams ended.
   */
  revalidate(): Promise<number> {
    if (this.#sweeping) {
      this.#sweepAgain = true;
      return this.#sweeping;
    }
    const run = async () => {
      let ended = 0;
      do {
        this.#sweepAgain = false;
        ended += await this.#sweepOnce();
      } while (this.#sweepAgain);
      return ended;
    };
    this.#sweeping = run().finally(() => this.#sweeping = undefined);
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<number> {
    const held = [...this.#sessions.values()].flatMap((session) => {
      const creds = session.credentials;
      return creds ? [{ session, creds }] : [];
    });
    if (held.length === 0) {
      this.#verifiedAt = Date.now();
      return 0;
    }
    const states = await this.deps.daemons.credentialStates(held.map((h) => h.creds));
    this.#verifiedAt = Date.now();
    const now = this.deps.clock();
    const overlapMs = this.deps.overlapMs ?? DEFAULT_OVERLAP_MS;
    let ended = 0;
    for (const { session, creds } of held) {
      // The stream moved to other credentials while we read: the next sweep judges those.
      if (!sameCredentials(session.credentials, creds)) continue;
      const state = states.get(streamKey(creds.nodeId, creds.jti));
      const error = judgeStream(creds, state, now, overlapMs);
      if (error) {
        this.deps.log(`stream of node ${creds.nodeId} no longer stands: ${error.message}`);
        session.end(error);
        ended++;
        continue;
      }
      // A rotation whose notification was lost: the stream learns its deadline here.
      const left = state && overlapLeftMs(state, now, overlapMs);
      if (left !== undefined) session.revalidateWithin(left);
    }
    return ended;
  }

  #startSweeping(): void {
    if (this.#sweepTimer !== undefined) return;
    this.#verifiedAt = Date.now();
    this.#sweepTimer = setInterval(() => {
      this.revalidate().catch((error) => {
        this.deps.log(`stream revalidation failed (retried next interval): ${error.message}`);
        this.#endUnverified();
      });
    }, this.deps.heartbeatIntervalSecs * 1000);
    Deno.unrefTimer(this.#sweepTimer);
  }

  /**
   * Streams are kept through a short database outage (a restart, a failover), but not for ever:
   * a node revoked elsewhere meanwhile must not keep a stream on a relay that cannot see it. Past
   * the limit every held stream ends UNREACHABLE, and the daemons retry, on a relay that can
   * check them if there is one.
   */
  #endUnverified(): void {
    const limitMs = Math.max(
      UNVERIFIED_STREAM_MIN_MS,
      3 * this.deps.heartbeatIntervalSecs * 1000,
    );
    const unverifiedMs = Date.now() - this.#verifiedAt;
    if (unverifiedMs < limitMs) return;
    const error = new AegisError(
      "UNREACHABLE",
      `this controller could not check the node's credentials for ${
        Math.round(unverifiedMs / 1000)
      }s (its database is unreachable)`,
    );
    for (const session of [...this.#sessions.values()]) session.end(error);
  }

  #stopSweeping(): void {
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  /** Set by drain(): the controller is stopping, and ended streams are recorded all at once. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /**
   * Asks every daemon to come back later, staggered so they do not all return at once. From
   * here on an ended stream is not recorded one by one: 15,000 streams ending in the same
   * second were 15,000 statements that held shutdown up for tens of seconds, and the caller
   * records them with one (DaemonRepository.releaseRelay) once the listener is closed.
   */
  drain(spreadMs: number): void {
    this.#stopping = true;
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
  readonly outbox: CappedQueue<EdgeDownstream> = new CappedQueue<EdgeDownstream>({
    maxItems: OUTBOX_MAX_ITEMS,
    maxBytes: OUTBOX_MAX_BYTES,
    sizeOf: downstreamBytes,
    onOverflow: () => {
      const error = new AegisError(
        "RATE_LIMITED",
        `the host did not read its stream: more than ${OUTBOX_MAX_ITEMS} messages or ` +
          `${OUTBOX_MAX_BYTES} bytes waited for it, so the stream was ended`,
        { details: { reason: "outbox_overflow" } },
      );
      this.end(error);
      return error;
    },
  });
  #lastHeartbeatWrite = -Infinity;
  /** Calls this stream was told to stop because nobody waits for them (bounded; see below). */
  readonly #orphans = new Set<string>();
  #heartbeatUnrecorded = false;
  #node?: AuthenticatedNode;
  /** When this stream's Hello recorded the node Connected: its end clears that record only. */
  #connectedAt?: Date;
  #token = "";
  #seq = 0n;
  #watchdog?: ReturnType<typeof setTimeout>;
  #revalidateAt?: number;
  #silenceMs: number;
  /** Why the stream was ended for cause (revoked, credentials no longer valid). */
  #ended?: AegisError;

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

  /** What the stream authenticated with, once it has said Hello. */
  get credentials(): StreamCredentials | undefined {
    const node = this.#node;
    if (!node || this.#seq === 0n) return undefined;
    return { nodeId: node.nodeId, jti: node.claims.jti, fingerprint: node.fingerprint };
  }

  /**
   * Queues a message for the node. A tool call is refused (thrown, typed) on a stream ended for
   * cause or already closed: every path that hands a call to a node comes through here. A call
   * that would overflow the outbox of a node slow to read is refused on its own: the controller's
   * own calls must not cost the node its stream (only the node's own behaviour may).
   */
  send(body: EdgeDownstream["body"]): boolean {
    const message = create(EdgeDownstreamSchema, { body });
    if (body.case === "toolCall") {
      if (this.#ended) throw new AegisError(this.#ended.code, this.#ended.message);
      if (this.outbox.closed) {
        throw new AegisError("NODE_OFFLINE", "the host's stream ended before the call was sent");
      }
      if (!this.outbox.fits(message)) {
        throw new AegisError(
          "RATE_LIMITED",
          "the host is not reading its stream fast enough to take this call now; try again",
          { details: { reason: "outbox_full" } },
        );
      }
    }
    return this.outbox.push(message);
  }

  async receive(envelope: SealNodeEnvelope | undefined): Promise<void> {
    if (this.#ended) throw this.#ended;
    if (!envelope) throw new AegisError("INVALID_ARGUMENT", "a stream message without an envelope");
    const payload = await this.#open(envelope);
    this.#armWatchdog();
    const { daemons, clock, relayId } = this.hub.deps;
    const body = payload.body;
    switch (body.case) {
      case "hello": {
        if (payload.seq !== 1n) throw new AegisError("INVALID_ARGUMENT", "Hello comes only once");
        checkHello(body.value);
        const caps = body.value.capabilities;
        const interval = body.value.heartbeatIntervalSecs || this.hub.deps.heartbeatIntervalSecs;
        this.#silenceMs = 3 * interval * 1000;
        this.#armWatchdog(); // armed above with the default interval, before the node named its own
        // Registered first, then checked: a revocation that commits after the update below sends
        // its drop to a stream that is already findable; one that committed before is seen here.
        this.hub.register(this, payload.nodeId);
        this.#connectedAt = clock();
        const live = await daemons.markConnected(payload.nodeId, {
          at: this.#connectedAt,
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
          report: boundReport(body.value.report, clock()),
        }).catch((error) => {
          // Fail closed: a stream whose record could not be checked takes no calls.
          this.end(error instanceof AegisError ? error : new AegisError("INTERNAL", String(error)));
          throw error;
        });
        if (!live) {
          const revoked = new AegisError("NODE_REVOKED", `node ${payload.nodeId} was revoked`);
          this.end(revoked);
          throw revoked;
        }
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
      case "toolEvent": {
        // Awaited: a call whose reader lags holds this stream back (bounded; see CallRegistry).
        const delivered = await this.hub.calls.deliver(payload.nodeId, body.value);
        const kind = body.value.event.case;
        if (!delivered && kind !== "exit" && kind !== "refused") {
          this.#stopOrphan(body.value.callId);
        }
        return;
      }
      case "heartbeat":
        {
          // A few cancels per heartbeat at most: they share the outbox with everything else.
          let budget = ORPHAN_CANCELS_PER_HEARTBEAT;
          for (const callId of body.value.runningCallIds.slice(0, MAX_REPORTED_CALLS)) {
            if (budget === 0) break;
            if (callId.length <= 128 && !this.hub.calls.has(callId, payload.nodeId)) {
              if (this.#stopOrphan(callId)) budget--;
            }
          }
        }
        // Heartbeats at line rate cost one UPDATE a second, not one each.
        if (performance.now() - this.#lastHeartbeatWrite >= HEARTBEAT_WRITE_INTERVAL_MS) {
          this.#lastHeartbeatWrite = performance.now();
          await this.#recordHeartbeat(payload.nodeId);
        }
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

  /**
   * The database being away is no reason to drop the node: only its liveness record goes stale
   * meanwhile. Nothing else about it can change unseen: a revocation needs the database too, and
   * once this relay reaches it again it checks every held stream (the LISTEN connection comes
   * back and revalidates, and the sweep runs each interval); calls need it to be recorded. Ending
   * the stream instead sent every node of the relay into reconnect backoff at each outage, to
   * come back in a herd, and long after the database did.
   */
  async #recordHeartbeat(nodeId: string): Promise<void> {
    try {
      await this.hub.deps.daemons.heartbeat(nodeId);
      this.#heartbeatUnrecorded = false;
    } catch (error) {
      if (!(error instanceof AegisError && error.code === "UNREACHABLE")) throw error;
      if (!this.#heartbeatUnrecorded) {
        this.hub.deps.log(
          `heartbeat of node ${nodeId} not recorded; stream kept: ${error.message}`,
        );
      }
      this.#heartbeatUnrecorded = true;
    }
  }

  /** Called by the transport when the stream is over, whichever side ended it. */
  async closed(): Promise<void> {
    clearTimeout(this.#watchdog);
    this.outbox.close();
    await this.#release(`disconnected during the call`);
  }

  /**
   * Ends the stream for cause, at once: it leaves the hub (no call can be routed to it), its
   * pending calls fail, and the node sees the typed error.
   */
  end(error: AegisError): void {
    if (this.#ended) return;
    this.#ended = error;
    this.fail(error);
    this.#release(error.message, error.code).catch((e) =>
      this.hub.deps.log(`releasing a stream failed: ${(e as Error).message}`)
    );
  }

  /** Leaves the hub; pending calls fail with the cause (revoked, …) or as offline. */
  async #release(reason: string, code?: ErrorCode): Promise<void> {
    const node = this.#node;
    if (!node || !this.hub.unregister(this, node.nodeId)) return;
    this.hub.calls.failNode(node.nodeId, `host ${node.nodeId}: ${reason}`, code);
    // A stopping controller marks all its streams at once when they are gone (stop()).
    if (!this.hub.stopping) {
      await this.hub.deps.daemons.markDisconnected(
        node.nodeId,
        this.hub.deps.relayId,
        this.#connectedAt,
      );
    }
    this.hub.deps.log(`node ${node.nodeId} disconnected`);
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

  /** As credentialsReplaced, but never later than a deadline already set. */
  revalidateWithin(ms: number): void {
    const at = Date.now() + ms;
    if (this.#revalidateAt === undefined || at < this.#revalidateAt) this.#revalidateAt = at;
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

  /**
   * A call nobody here waits for (its output arrived, or a heartbeat lists it): its caller was
   * told it failed when the node's previous stream dropped (or the relay that dispatched it
   * died, or it was cancelled). The command would otherwise run on to its own deadline with its
   * output thrown away, so the host is told to stop it, once per call.
   */
  #stopOrphan(callId: string): boolean {
    if (this.#orphans.has(callId)) return false;
    if (this.#orphans.size >= MAX_ORPHANS_REMEMBERED) {
      this.#orphans.delete(this.#orphans.values().next().value!);
    }
    this.#orphans.add(callId);
    this.send({
      case: "toolCancel",
      value: {
        callId,
        reason: "nobody is waiting for this call any more (its caller was told it failed)",
      } as never,
    });
    return true;
  }

  #armWatchdog(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => {
      this.hub.deps.log(`stream from ${this.#node?.nodeId ?? this.remoteAddr} silent; dropping it`);
      this.goaway("SILENT", "no message within three heartbeat intervals", 0);
    }, this.#silenceMs);
  }
}

/** What a downstream message holds, roughly: call arguments dominate; the rest is small. */
function downstreamBytes(message: EdgeDownstream): number {
  const body = message.body;
  return body.case === "toolCall" ? 256 + body.value.argumentsJson.length * 3 : 256;
}

function sameCredentials(a: StreamCredentials | undefined, b: StreamCredentials): boolean {
  return a?.nodeId === b.nodeId && a.jti === b.jti && a.fingerprint === b.fingerprint;
}
