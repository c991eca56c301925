// The whole controller in this process on a real loopback socket (port 0), on a fresh test
// database (PGlite, or PostgreSQL with AEGIS_TEST_PG_DSN) and a temporary data dir: for tests and
// benches that need its HTTP surface and want its services (tokens, db) at hand.
import { parseControllerConfig } from "../../controller/config.ts";
import { type RunningController, startController } from "../../controller/server/controller.ts";
import { testDatabase } from "./db.ts";

export interface InProcessController {
  controller: RunningController;
  /** http://127.0.0.1:<port> */
  base: string;
  /** Stops the controller and drops its database and data dir. */
  close(): Promise<void>;
}

/** `yaml`: further top-level config lines (e.g. an `auth:` section), after cluster and postgres. */
export async function startInProcessController(
  yaml: string[] = [],
  source = "test",
): Promise<InProcessController> {
  const dir = await Deno.makeTempDir({ prefix: "aegis-ctl-" });
  const store = await testDatabase();
  try {
    const config = parseControllerConfig(
      [
        "cluster:",
        "  bind_address: 127.0.0.1",
        ...(store.dsn ? ["postgres:", `  dsn: "${store.dsn}"`] : []),
        ...yaml,
      ].join("\n"),
      source,
      {},
    );
    const controller = await startController({ config, dataDir: dir, port: 0 });
    return {
      controller,
      base: `http://127.0.0.1:${controller.port}`,
      async close() {
        await controller.close();
        await store.cleanup();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (e) {
    await store.cleanup();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** Runs `fn` against a fresh in-process controller and closes it, whatever `fn` does. */
export async function withInProcessController(
  yaml: string[],
  fn: (controller: RunningController, base: string) => Promise<void>,
): Promise<void> {
  const { controller, base, close } = await startInProcessController(yaml);
  try {
    await fn(controller, base);
  } finally {
    await close();
  }
}
