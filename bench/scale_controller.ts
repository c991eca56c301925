// The scale bench's controller process: the real controller (startController, as `aegis-controller
// run` wires it) in this process, plus a line protocol on stdin so the bench can read this
// process's own numbers. Run with --v8-flags=--expose-gc so "report" can collect first.
//
//   deno run -A --v8-flags=--expose-gc bench/scale_controller.ts --config F --data-dir D [--port P]
//
// stdout: first {"port":P}, then one JSON line per command, in order:
//   report               ControllerReport after a forced GC (what the heap keeps)
//   stats                ControllerReport without GC (cheap: for polling and CPU windows)
//   token TENANT ROLE    {"token":"…"} an operator token signed by this controller
// stderr: the controller's log. SIGTERM or SIGINT: the graceful shutdown (GOAWAY hints, drain).
import process from "node:process";
import { parseArgs } from "node:util";
import { loadControllerConfig } from "../controller/config.ts";
import { startController } from "../controller/server/controller.ts";
import type { OperatorRole } from "../shared/tokens/claims.ts";

export interface ControllerReport {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Streams the hub holds (authenticated, one per node). */
  streams: number;
}

const encoder = new TextEncoder();
const out = (value: unknown) => Deno.stdout.writeSync(encoder.encode(JSON.stringify(value) + "\n"));
const err = (text: string) => Deno.stderr.writeSync(encoder.encode(text + "\n"));

/** Answers one command line; unknown commands get {"error":…} so the bench never waits forever. */
export type Command = (line: string) => Promise<unknown>;

function commands(controller: Awaited<ReturnType<typeof startController>>): Command {
  const numbers = (): ControllerReport => {
    const memory = Deno.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      streams: controller.hub.size,
    };
  };
  return async (line) => {
    const [name, ...args] = line.trim().split(/\s+/);
    if (name === "stats") return numbers();
    if (name === "report") {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (!gc) return { error: "run with --v8-flags=--expose-gc" };
      gc();
      return numbers();
    }
    if (name === "token") {
      const [tenantId = "bench", role = "operator"] = args;
      const token = await controller.tokens.issueOperator({
        subject: `bench:${role}`,
        tenantId,
        role: role as OperatorRole,
        ttlSecs: 86_400,
      });
      return { token };
    }
    return { error: `unknown command "${name}"` };
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string" },
      "data-dir": { type: "string" },
      port: { type: "string" },
    },
  });
  const config = await loadControllerConfig(values.config!);
  const controller = await startController({
    config,
    dataDir: values["data-dir"]!,
    port: values.port === undefined ? undefined : Number(values.port),
    log: (message) => err(`${new Date().toISOString()} ${message}`),
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= controller.close().then(() => Deno.exit(0), (error) => {
      err(`close failed: ${(error as Error).message}`);
      Deno.exit(1);
    });
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  out({ port: controller.port, endpoint: controller.publicEndpoint, db: controller.db.kind });

  const answer = commands(controller);
  let buffered = "";
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === "") continue;
      out(await answer(line).catch((error) => ({ error: (error as Error).message })));
    }
  }
  // The bench closed our stdin (it went away): shut down as on SIGTERM.
  stop();
}
