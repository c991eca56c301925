// Daemons' ConnectEdge streams (gRPC, binary codec) on the lean path: served on the raw HTTP/2
// stream by grpc_bidi.ts, into the same stream logic Connect's router calls for the other
// protocols (edge_stream.ts).
import {
  EdgeDownstreamSchema,
  EdgeUpstreamSchema,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { type EdgeStreamDeps, serveEdgeStream } from "../rpc/edge_stream.ts";
import { isGrpcProtoCall, serveGrpcBidi } from "../rpc/grpc_bidi.ts";
import type { RawStreamRoute } from "./listener.ts";

export const CONNECT_EDGE_PATH = "/aegis.edge.v1.NodeClusterService/ConnectEdge";

export function edgeGrpcRoute(deps: EdgeStreamDeps, readMaxBytes: number): RawStreamRoute {
  return {
    matches: (headers) => isGrpcProtoCall(headers, CONNECT_EDGE_PATH),
    serve(stream, headers, peer) {
      serveGrpcBidi(stream, headers, {
        input: EdgeUpstreamSchema,
        output: EdgeDownstreamSchema,
        readMaxBytes,
        onData: peer.count,
        onStall: peer.cut,
        handler: (requests, call) =>
          serveEdgeStream(deps, requests, {
            remoteAddr: peer.remoteAddr,
            trust: peer.trust,
            get aborted() {
              return call.aborted;
            },
          }),
      });
    },
  };
}
