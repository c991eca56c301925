// A credential step the controller asked for over the daemon's stream (a fleet rotation or
// refresh) sends its unary call over that stream's own HTTP/2 connection first: the endpoint is
// known to answer, and no connection is set up and torn down per call (a fleet of 10,000 in
// parallel would otherwise open 10,000 more connections to the relay at once). Only failures
// that say nothing about the request move on to the configured endpoints, as callAnyEndpoint does.
import type { Endpoint } from "../../shared/endpoint.ts";
import { AegisError } from "../../shared/errors.ts";
import { isRetryable } from "../../shared/rpc_errors.ts";
import { callAnyEndpoint } from "../client/failover.ts";
import { callNode, type ClientOptions, type NodeClient } from "../client/node_client.ts";

/** The connection a daemon's stream runs on. */
export interface StreamLink {
  client: NodeClient;
  endpoint: Endpoint;
  /**
   * How long the call may wait for its answer on this connection: a fleet operation's node
   * deadline, so a controller busy with a whole fleet answers late rather than being asked
   * twice (the client's default deadline is 15 s).
   */
  timeoutMs?: number;
}

export interface CallOptions {
  timeoutMs?: number;
}

/** The node client's default deadline for a unary call (node_client.ts). */
const UNARY_DEADLINE_MS = 15_000;

/** Waits between asks the controller refused as busy: full jitter under a doubling cap. */
const BUSY_BASE_MS = 100;
const BUSY_CAP_MS = 5_000;

export async function callViaStream<T>(
  link: StreamLink | undefined,
  endpoints: readonly Endpoint[],
  options: ClientOptions,
  call: (client: NodeClient, endpoint: Endpoint, options?: CallOptions) => Promise<T>,
): Promise<T> {
  if (link) {
    const deadline = Date.now() + (link.timeoutMs ?? UNARY_DEADLINE_MS);
    for (let refusals = 0;; refusals++) {
      const left = deadline - Date.now();
      const perCall = link.timeoutMs ? { timeoutMs: left } : undefined;
      try {
        return await callNode(link.endpoint, () => call(link.client, link.endpoint, perCall));
      } catch (error) {
        if (!(error instanceof AegisError) || !isRetryable(error)) throw error;
        // RATE_LIMITED is the controller turning the request away unread because too many are
        // in flight (a whole fleet asked at once, say from behind one NAT address): the
        // connection is fine and nothing was done. Another connection meets the same bound
        // and adds to the load, so the same connection asks again after a random wait, within
        // the call's deadline. Anything else moves on to the configured endpoints, as before.
        if (error.code !== "RATE_LIMITED") break;
        const wait = Math.random() * Math.min(BUSY_CAP_MS, BUSY_BASE_MS * 2 ** refusals);
        if (Date.now() + wait >= deadline - BUSY_BASE_MS) break;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
  return (await callAnyEndpoint(endpoints, options, (client, endpoint) => call(client, endpoint)))
    .value;
}
