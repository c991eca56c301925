// One worker process of the scale bench: enrolls its share of the fleet (each daemon its own
// enrollment token and key), then, when told, runs every one as a SimulatedDaemon connecting
// from its own loopback address. Reports on stdout as JSON lines, once a second and after each
// command; reads commands on stdin:
//   connect   start the daemons (at most `connectConcurrency` first connects at a time)
//   gc        collect garbage now (the next report says so with a higher gcSeq)
// Exits when its stdin closes or on SIGTERM/SIGINT.
//
//   deno run -A --v8-flags=--expose-gc bench/scale_worker.ts <plan.json>
import process from "node:process";
import { parseEdgeConfig } from "../shared/config/edge_config.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { ToolRunner } from "../agent/tools/mod.ts";
import { enrollOne, pool, type SimulatedNode } from "./support.ts";
import { sourceAddress } from "./scale_addresses.ts";
import {
  type DaemonFleet,
  type FleetCounters,
  newCounters,
  routeEvents,
  SimulatedDaemon,
} from "./scale_daemon.ts";

/** What the bench hands a worker. */
export interface WorkerPlan {
  worker: number;
  endpoint: string;
  tokens: string[];
  /** Enrollments in flight at once in this worker. */
  enrollConcurrency: number;
  /** First connects in flight at once in this worker (reconnects pace themselves). */
  connectConcurrency: number;
  /** Where to write this worker's node ids once enrolled (a JSON array). */
  nodesFile: string;
}

export interface WorkerReport extends FleetCounters {
  phase: "enrolling" | "enrolled" | "connecting" | "running";
  enrolled: number;
  enrollFailed: number;
  lastEnrollError?: string;
  enrollMs?: number;
  /** Daemons through the cold-start gate (up, or gave up after a few tries). */
  started: number;
  rss: number;
  heapUsed: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  gcSeq: number;
}

/** Enrolls every token through a few shared connections (one per 8 in flight). */
async function enrollAll(
  plan: WorkerPlan,
  report: WorkerReport,
): Promise<SimulatedNode[]> {
  const endpoint = parseEndpoint(plan.endpoint);
  const clientCount = Math.max(1, Math.ceil(plan.enrollConcurrency / 8));
  const clients: NodeClient[] = [];
  for (let i = 0; i < clientCount; i++) {
    // Addresses from the top of the worker's range: the daemons' own start at the bottom.
    const localAddress = sourceAddress(plan.worker, 255 * 250 + i);
    clients.push(await createNodeClient(endpoint, { http2: { localAddress } }));
  }
  const nodes: SimulatedNode[] = [];
  const started = performance.now();
  let next = 0;
  try {
    await pool(plan.tokens, plan.enrollConcurrency, async (token) => {
      const client = clients[next++ % clients.length];
      try {
        nodes.push(await enrollOne(client, token));
        report.enrolled++;
      } catch (error) {
        report.enrollFailed++;
        report.lastEnrollError = (error as Error).message;
      }
    });
  } finally {
    for (const client of clients) client.close();
  }
  report.enrollMs = performance.now() - started;
  return nodes;
}

function usage(report: WorkerReport, counters: FleetCounters): WorkerReport {
  const memory = Deno.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    ...report,
    ...counters,
    reasons: { ...counters.reasons },
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
  };
}

if (import.meta.main) {
  const plan: WorkerPlan = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  const stop = new AbortController();
  const exit = () => {
    stop.abort();
    // The sockets close with the process; nothing here is worth waiting for.
    setTimeout(() => Deno.exit(0), 200);
  };
  Deno.addSignalListener("SIGTERM", exit);
  Deno.addSignalListener("SIGINT", exit);

  const counters = newCounters();
  const report: WorkerReport = {
    ...counters,
    phase: "enrolling",
    enrolled: 0,
    enrollFailed: 0,
    started: 0,
    rss: 0,
    heapUsed: 0,
    cpuUserMs: 0,
    cpuSystemMs: 0,
    gcSeq: 0,
  };
  const encoder = new TextEncoder();
  const emit = () =>
    Deno.stdout.writeSync(encoder.encode(JSON.stringify(usage(report, counters)) + "\n"));
  const ticker = setInterval(emit, 1000);

  // Commands may arrive while enrolling; "connect" waits for the enrollment.
  let connect!: () => void;
  const connectAsked = new Promise<void>((resolve) => connect = resolve);
  (async () => {
    let buffered = "";
    for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === "connect") connect();
        else if (line.trim() === "gc") {
          (globalThis as { gc?: () => void }).gc?.();
          report.gcSeq++;
          emit();
        }
      }
    }
    exit(); // the bench went away
  })();

  const nodes = await enrollAll(plan, report);
  await Deno.writeTextFile(plan.nodesFile, JSON.stringify(nodes.map((n) => n.nodeId)));
  report.phase = "enrolled";
  emit();
  await connectAsked;
  report.phase = "connecting";

  const config = parseEdgeConfig('local_tools: [echo]\nedge:\n  sandbox: "off"\n');
  const callsOn = new Map<string, SimulatedDaemon>();
  const fleet: DaemonFleet = {
    endpoint: parseEndpoint(plan.endpoint),
    config,
    runner: new ToolRunner(
      { config, resolveSecret: () => Promise.resolve(undefined), log: () => {} },
      routeEvents(callsOn),
    ),
    callsOn,
    signal: stop.signal,
    counters,
  };
  const daemons = nodes.map((node, i) =>
    new SimulatedDaemon(fleet, node, sourceAddress(plan.worker, i), `scale-${plan.worker}-${i}`)
  );
  const runs: Promise<void>[] = [];
  await pool(daemons, plan.connectConcurrency, (daemon) =>
    new Promise<void>((resolve) => {
      let done = false;
      const first = () => {
        if (done) return;
        done = true;
        report.started++;
        resolve();
      };
      runs.push(daemon.run(first));
    }));
  report.phase = "running";
  emit();
  await Promise.all(runs);
  clearInterval(ticker);
  emit();
  Deno.exit(0);
}
