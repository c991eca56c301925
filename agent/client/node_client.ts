// The daemon's and CLI's client for NodeClusterService: gRPC over HTTP/2 (h2c for http://
// endpoints, TLS otherwise). A --ca-file joins the OS trust store; verification is never off.
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { NodeClusterService } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { Endpoint } from "../../shared/endpoint.ts";
import { AegisError } from "../../shared/errors.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";
import { H2Session, type H2SessionOptions } from "../../shared/net/h2_session.ts";

export type NodeClient = Client<typeof NodeClusterService> & {
  /** Drops the HTTP/2 connection at once; the client is unusable afterwards. */
  close(): void;
  /**
   * Called when the connection under the client breaks (keepalive unanswered, reset, GOAWAY with
   * an error): the stream on it has failed, whatever the runtime did or did not tell it.
   */
  onBroken(listener: (reason: AegisError) => void): () => void;
  /** The HTTP/2 connection (tests and soak checks read its counters). */
  session: H2Session;
};

export interface ClientOptions {
  caFile?: string;
  /** Deadline for unary calls. */
  timeoutMs?: number;
  /** Keepalive and connect deadlines (defaults: PING after 20 s quiet, 10 s to answer). */
  http2?: Partial<H2SessionOptions>;
}

export async function createNodeClient(
  endpoint: Endpoint,
  options: ClientOptions = {},
): Promise<NodeClient> {
  let ca: string | undefined;
  if (options.caFile) {
    try {
      ca = await Deno.readTextFile(options.caFile);
    } catch (error) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `cannot read --ca-file ${options.caFile}: ${(error as Error).message}`,
      );
    }
  }
  // This process owns the connection's whole life (see shared/net/h2_session.ts): no timer of a
  // dead session can fire into it, and a dead path is noticed by keepalive PINGs.
  const session = new H2Session(endpoint.baseUrl, { ...options.http2, ca });
  const transport = createGrpcTransport({
    baseUrl: endpoint.baseUrl,
    defaultTimeoutMs: options.timeoutMs ?? 15_000,
    sessionManager: session,
  });
  const client = createClient(NodeClusterService, transport);
  return Object.assign(client, {
    close: () => session.close(),
    onBroken: (listener: (reason: AegisError) => void) =>
      session.onEnd((end) => {
        if (end.broken) listener(fromConnectError(end.reason, endpoint.display));
      }),
    session,
  });
}

/** Runs a unary call and turns any failure into a typed AegisError naming the endpoint. */
export async function callNode<T>(endpoint: Endpoint, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromConnectError(error, endpoint.display);
  }
}
