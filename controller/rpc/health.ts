// grpc.health.v1.Health: SERVING while the controller can reach its database.
import type { ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../shared/gen/grpc/health/v1/health_pb.ts";

const KNOWN_SERVICES = new Set(["", "grpc.health.v1.Health", "aegis.edge.v1.NodeClusterService"]);

export function healthService(
  isServing: () => Promise<boolean>,
): Partial<ServiceImpl<typeof Health>> {
  const statusOf = async (service: string) => {
    if (!KNOWN_SERVICES.has(service)) return HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
    return (await isServing())
      ? HealthCheckResponse_ServingStatus.SERVING
      : HealthCheckResponse_ServingStatus.NOT_SERVING;
  };
  return {
    async check(request) {
      return { status: await statusOf(request.service) };
    },
    async *watch(request, ctx) {
      let last: HealthCheckResponse_ServingStatus | undefined;
      while (!ctx.signal.aborted) {
        const status = await statusOf(request.service);
        if (status !== last) yield { status };
        last = status;
        await new Promise((resolve) => setTimeout(resolve, 5000));
      }
    },
  };
}
