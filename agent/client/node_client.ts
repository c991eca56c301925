// The daemon's and CLI's client for NodeClusterService: gRPC over HTTP/2 (h2c for http://
// endpoints, TLS otherwise). A --ca-file joins the OS trust store; verification is never off.
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { NodeClusterService } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { Endpoint } from "../../shared/endpoint.ts";
import { AegisError } from "../../shared/errors.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";

export type NodeClient = Client<typeof NodeClusterService> & {
  /** Drops the HTTP/2 connection at once. */
  close(): void;
};

export interface ClientOptions {
  caFile?: string;
  /** Deadline for unary calls. */
  timeoutMs?: number;
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
  const sessionManager = new Http2SessionManager(endpoint.baseUrl, {
    // Keepalives well under the 60 s idle timeout common in load balancers.
    pingIntervalMs: 20_000,
    pingTimeoutMs: 10_000,
    pingIdleConnection: true,
  }, ca ? { ca } : {});
  const transport = createGrpcTransport({
    baseUrl: endpoint.baseUrl,
    defaultTimeoutMs: options.timeoutMs ?? 15_000,
    sessionManager,
  });
  const client = createClient(NodeClusterService, transport);
  // Closing the session ourselves also matters for correctness: Deno's nghttp2 can abort the
  // process when a GOAWAY arrives on a session whose streams were just reset, which is what
  // a controller restart does to a daemon that already dropped its stream.
  return Object.assign(client, { close: () => sessionManager.abort() });
}

/** Runs a unary call and turns any failure into a typed AegisError naming the endpoint. */
export async function callNode<T>(endpoint: Endpoint, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromConnectError(error, endpoint.display);
  }
}
