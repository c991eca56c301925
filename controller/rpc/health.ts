// grpc.health.v1.Health: SERVING while the controller can reach its database. As the gRPC health
// checking protocol says, Check on a service the server does not know fails NOT_FOUND, while
// Watch answers SERVICE_UNKNOWN and stays open (the service may appear later).
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../shared/gen/grpc/health/v1/health_pb.ts";
import { StreamGate } from "../app/stream_gate.ts";
import { DEFAULT_LIMITS } from "../server/limits.ts";
import { wireError } from "./boundary.ts";
import { remoteBucket } from "./context.ts";

const KNOWN_SERVICES = new Set(["", "grpc.health.v1.Health", "aegis.edge.v1.NodeClusterService"]);

export function healthService(
  isServing: () => Promise<boolean>,
  // Watch is anonymous and lives for ever, so it gets caps of its own.
  watchers = new StreamGate(
    "health watch streams",
    DEFAULT_LIMITS.watch_streams_per_address,
    DEFAULT_LIMITS.watch_streams_max,
  ),
): Partial<ServiceImpl<typeof Health>> {
  const statusOf = async (service: string) => {
    if (!KNOWN_SERVICES.has(service)) return HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
    return (await isServing())
      ? HealthCheckResponse_ServingStatus.SERVING
      : HealthCheckResponse_ServingStatus.NOT_SERVING;
  };
  return {
    async check(request) {
      if (!KNOWN_SERVICES.has(request.service)) {
        throw new ConnectError(`unknown service ${JSON.stringify(request.service)}`, Code.NotFound);
      }
      return { status: await statusOf(request.service) };
    },
    async *watch(request, ctx) {
      let release: () => void;
      try {
        release = watchers.admit(remoteBucket(ctx));
      } catch (error) {
        throw wireError(error, () => {});
      }
      try {
        let last: HealthCheckResponse_ServingStatus | undefined;
        while (!ctx.signal.aborted) {
          const status = await statusOf(request.service);
          if (status !== last) yield { status };
          last = status;
          await abortableDelay(5000, ctx.signal);
        }
      } finally {
        release();
      }
    },
  };
}

/** Waits, but wakes at once when the stream ends so its slot is freed promptly. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
