// `aegis-controller run`: serve until SIGINT/SIGTERM.
import { loadControllerConfig } from "../config.ts";
import { startController } from "../server/controller.ts";
import type { Io } from "../../shared/cli/io.ts";

export interface RunOptions {
  config: string;
  dataDir: string;
  port?: number;
}

export async function runController(
  options: RunOptions,
  io: Io,
  stop: Promise<void>,
): Promise<number> {
  const config = await loadControllerConfig(options.config);
  const log = (message: string) => io.err(`${new Date().toISOString()} ${message}\n`);
  const controller = await startController({
    config,
    dataDir: options.dataDir,
    port: options.port,
    log,
  });
  log(
    `aegis-controller (${config.cluster.role}) listening on ${config.cluster.bind_address}:${controller.port}` +
      ` — gRPC, gRPC-Web, Connect and REST; enrollment endpoint ${controller.publicEndpoint}` +
      ` (${controller.db.kind})`,
  );
  io.out(JSON.stringify({ port: controller.port, endpoint: controller.publicEndpoint }) + "\n");
  await stop;
  log("shutting down: asking daemons to reconnect later");
  await controller.close();
  return 0;
}
