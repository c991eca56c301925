// One ConnectEdge stream, whichever transport carries it: the lean gRPC path on the raw HTTP/2
// stream (grpc_bidi.ts, what daemons use) or Connect's router (gRPC-Web and the Connect protocol).
// Both call this, so admission, the Hello deadline, trust and error mapping are the same.
import { ConnectError } from "@connectrpc/connect";
import type {
  EdgeDownstream,
  EdgeUpstream,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import type { EdgeHub } from "../app/edge_sessions.ts";
import type { StreamGate } from "../app/stream_gate.ts";
import { addressBucket } from "../server/client_address.ts";
import { type Log, wireError } from "./boundary.ts";

export interface EdgeAdmission {
  /** Streams not yet authenticated, per address, per prefix and in all. */
  gate: StreamGate;
  /** How long a stream may stay unauthenticated. */
  deadlineMs: number;
}

export interface EdgeStreamDeps {
  hub: EdgeHub;
  admission: EdgeAdmission;
  log: Log;
}

/** What a transport tells the stream about its peer. */
export interface EdgeStreamPeer {
  /** The client's address (a trusted proxy's forwarding header already resolved). */
  readonly remoteAddr: string;
  /**
   * The stream authenticated: it may outlive the body deadline, its bytes leave the
   * unauthenticated budget and its connection its address's count. Returns the way back.
   */
  trust(): () => void;
  /** The peer is gone: there is no one left to tell why the stream ended. */
  readonly aborted: boolean;
}

/** Reads the node's messages and yields the controller's; a thrown error is the final status. */
export async function* serveEdgeStream(
  deps: EdgeStreamDeps,
  requests: AsyncIterable<EdgeUpstream>,
  peer: EdgeStreamPeer,
): AsyncGenerator<EdgeDownstream> {
  const { log, admission } = deps;
  // Until its Hello authenticates, a stream counts against its address's and the global cap,
  // and has a short deadline instead of the heartbeat watchdog's minutes.
  let release: (completed?: boolean) => void;
  let evict: () => boolean = () => false;
  try {
    release = admission.gate.admit(addressBucket(peer.remoteAddr), () => evict());
  } catch (error) {
    throw wireError(error, log);
  }
  const session = deps.hub.open(peer.remoteAddr);
  // The pool was full and this stream's prefix held the most: it makes room for a newcomer.
  // Not once its Hello has arrived: that one is being checked, and evicting it would throw the
  // work away (a restarting fleet would churn without end).
  let helloArrived = false;
  evict = () => {
    if (session.node || helloArrived) return false;
    // It lost its slot, not its place: it is told its turn in line like a stream refused.
    const retryAfterMs = admission.gate.nextTurnMs();
    session.fail(wireError(
      new AegisError(
        "RATE_LIMITED",
        `unauthenticated stream evicted for a newcomer; retry in ${
          (retryAfterMs / 1000).toFixed(1)
        }s`,
        { details: { retry_after_ms: String(retryAfterMs) } },
      ),
      log,
    ));
    return true;
  };
  const deadline = setTimeout(() => {
    if (session.node) return;
    log(`stream from ${session.remoteAddr} sent no valid Hello in time; dropping it`);
    session.fail(wireError(
      new AegisError(
        "UNAUTHENTICATED",
        `the stream must open with a valid Hello within ${admission.deadlineMs} ms`,
      ),
      log,
    ));
  }, admission.deadlineMs);
  /** The slot is free: `completed` when the Hello authenticated (the gate paces refusals by it). */
  const authenticated = (completed = false) => {
    clearTimeout(deadline);
    release(completed);
  };
  let trusted = false;
  let untrust = () => {};
  /** The response side is over (ended, evicted, past the deadline): nothing more is trusted. */
  let over = false;
  const pump = (async () => {
    try {
      for await (const message of requests) {
        helloArrived = true;
        await session.receive(message.envelope);
        if (over) {
          // A Hello that finished authenticating after the stream was already ended: it must
          // not lift the bounds off a dead stream's connection, nor leave the node registered.
          await session.closed();
          return;
        }
        if (session.node && !trusted) {
          trusted = true;
          untrust = peer.trust();
          authenticated(true);
        }
      }
      session.outbox.close();
    } catch (error) {
      // Domain refusals and unreadable requests (too large, compressed, truncated) go back
      // typed; once the peer is gone there is no one to tell.
      if ((error instanceof AegisError || error instanceof ConnectError) && !peer.aborted) {
        log(`stream from ${session.node?.nodeId ?? session.remoteAddr} refused: ${error.message}`);
        session.fail(wireError(error, log));
      } else {
        session.outbox.close();
      }
    }
  })();
  try {
    for await (const message of session.outbox) yield message;
  } catch (error) {
    throw wireError(error, log);
  } finally {
    over = true;
    authenticated();
    untrust(); // over (ended, replaced, revoked): its connection counts against its address
    await session.closed();
    // Not awaited: the request side ends only once the response has ended, i.e. after this.
    pump.catch(() => {});
  }
}
