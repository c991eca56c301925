// The scale harness (issue 12): one controller process (PGlite, or PostgreSQL with --pg) holding
// a fleet of N real edge streams run by W worker processes, each daemon enrolled for real (its
// own token and key) and connecting from its own loopback address. Prints, one labelled line
// each: enrollment time, controller RSS and GC-kept heap per stream, worker RSS per stream, the
// controller's CPU while the fleet only heartbeats, echo round trips at that scale, and how long
// the fleet takes to be back after a controller restart (SIGTERM, SIGKILL). Then one JSON line.
// Asserts nothing: the numbers are the point.
//
//   deno task bench:scale [--streams 1000] [--workers 6] [--window 60] [--calls 500]
//     [--heartbeat 30] [--restart SIGTERM,SIGKILL] [--no-restart] [--no-calls] [--pg ADMIN_DSN]
//
// --pg creates a fresh database through that admin DSN (dropped at the end). Every child runs
// with its soft open-file limit raised to --nofile (default 20,000, or the hard limit).
import { parseArgs } from "node:util";
import { ControllerChild, WorkerChild } from "./scale_children.ts";
import { deal } from "./scale_addresses.ts";
import { DEFAULT_LIMITS } from "../controller/server/limits.ts";
import {
  type CpuWindow,
  echoCalls,
  fleetReasons,
  fleetSum,
  idleCpu,
  issueTokens,
  type Restart,
  restart,
  sleep,
  waitConnected,
} from "./scale_phases.ts";
import type { WorkerPlan } from "./scale_worker.ts";
import type { ControllerReport } from "./scale_controller.ts";
import { HEALTHY_AFTER_MS } from "./scale_daemon.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    streams: { type: "string", default: "1000" },
    workers: { type: "string", default: "6" },
    window: { type: "string", default: "60" },
    calls: { type: "string", default: "500" },
    warmup: { type: "string", default: "20" },
    heartbeat: { type: "string", default: "30" },
    restart: { type: "string", default: "SIGTERM,SIGKILL" },
    "no-restart": { type: "boolean", default: false },
    "no-calls": { type: "boolean", default: false },
    down: { type: "string", default: "0" },
    pg: { type: "string" },
    "enroll-concurrency": { type: "string", default: "16" },
    "connect-concurrency": { type: "string", default: "32" },
    timeout: { type: "string", default: "600" },
    nofile: { type: "string", default: "20000" },
  },
});
const N = Number(values.streams);
const W = Math.min(Number(values.workers), N);
const heartbeatSecs = Number(values.heartbeat);
const timeoutMs = Number(values.timeout) * 1000;
const nofile = Number(values.nofile);
// The test support picks its database from the environment when it loads: set it first.
if (values.pg) Deno.env.set("AEGIS_TEST_PG_DSN", values.pg);
const { testDatabase } = await import("../tests/support/db.ts");

const KiB = 1024;
const MiB = 1024 * KiB;
const s = (ms: number | undefined) => ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const line = (label: string, value: string) => console.log(`${label}: ${value}`);

/** The controller's config: defaults, except what a bench fleet needs (see the README). */
function controllerYaml(dsn: string | undefined): string {
  const needed = Math.ceil(N * 1.1) + 1000;
  return [
    "cluster:",
    "  role: controller",
    "  bind_address: 127.0.0.1",
    ...(dsn ? ["postgres:", `  dsn: "${dsn}"`] : []),
    "edge:",
    // Enrollment comes from a few addresses per worker, far faster than a real fleet's.
    "  attest_rate_limit_per_min: 1000000",
    // Tokens are all issued before the fleet enrolls, which takes minutes at 15,000.
    "  enrollment_token_ttl_secs: 7200",
    `  heartbeat_interval_secs: ${heartbeatSecs}`,
    // Only raised, never lowered: the default must hold the fleet with room for operators.
    ...(needed > DEFAULT_LIMITS.max_connections ? ["limits:", `  max_connections: ${needed}`] : []),
  ].join("\n") + "\n";
}

/** The numbers so far: the final JSON line, printed also when the bench is interrupted. */
const results: Record<string, unknown> = {};

/** Everything started, so that any way out (an error, Ctrl-C) stops it all. */
const running = {
  controller: undefined as ControllerChild | undefined,
  workers: [] as WorkerChild[],
  cleanups: [] as (() => Promise<unknown>)[],
};

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(running.workers.map((w) => w.stop("SIGTERM").catch(() => {})));
    await running.controller?.stop("SIGKILL").catch(() => {});
    for (const undo of running.cleanups.reverse()) await undo().catch(() => {});
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    console.error(`\n${signal}: stopping every process the bench started`);
    console.log(JSON.stringify({ ...results, interrupted: signal }));
    void cleanup().then(() => Deno.exit(130));
  });
}

async function startController(configPath: string, dataDir: string, port: number) {
  const started = await ControllerChild.start(configPath, dataDir, port, nofile);
  running.controller = started.child;
  return started;
}

async function enroll(baseUrl: string, root: string) {
  const admin = (await running.controller!.command<{ token: string }>("token bench admin")).token;
  const issuing = performance.now();
  const tokens = await issueTokens(baseUrl, admin, N);
  line("enrollment tokens issued (REST)", `${N} in ${s(performance.now() - issuing)}`);
  const started = performance.now();
  const shares = deal(tokens, W);
  for (let w = 0; w < W; w++) {
    const plan: WorkerPlan = {
      worker: w,
      endpoint: baseUrl,
      tokens: shares[w],
      enrollConcurrency: Number(values["enroll-concurrency"]),
      connectConcurrency: Number(values["connect-concurrency"]),
      nodesFile: `${root}/nodes-${w}.json`,
    };
    await Deno.writeTextFile(`${root}/plan-${w}.json`, JSON.stringify(plan));
    running.workers.push(new WorkerChild(`${root}/plan-${w}.json`, nofile));
  }
  // Minutes at 15,000: say how it goes (on stderr, so stdout stays the results).
  const progress = setInterval(() => {
    const done = fleetSum(running.workers, "enrolled") + fleetSum(running.workers, "enrollFailed");
    console.error(`  … ${done}/${N} enrolled after ${s(performance.now() - started)}`);
  }, 15_000);
  await Promise.all(running.workers.map((w) => w.until((r) => r.phase === "enrolled")))
    .finally(() => clearInterval(progress));
  const ms = performance.now() - started;
  const enrolled = fleetSum(running.workers, "enrolled");
  const failed = fleetSum(running.workers, "enrollFailed");
  line(
    "enrolled (attest + challenge, in the workers)",
    `${enrolled} in ${s(ms)} = ${(enrolled / (ms / 1000)).toFixed(0)}/s` +
      (failed
        ? `; ${failed} failed: ${
          running.workers.find((w) => w.last?.lastEnrollError)?.last?.lastEnrollError
        }`
        : ""),
  );
  const nodeIds: string[] = [];
  for (let w = 0; w < W; w++) {
    nodeIds.push(...JSON.parse(await Deno.readTextFile(`${root}/nodes-${w}.json`)));
  }
  return { enrolled, failed, ms, nodeIds };
}

/** Each worker's RSS after a GC it was just asked for. */
async function workersRss(): Promise<number[]> {
  const reports = await Promise.all(running.workers.map(async (w) => {
    const seq = w.last?.gcSeq ?? 0;
    await w.send("gc");
    return await w.until((r) => r.gcSeq > seq);
  }));
  return reports.map((r) => r.rss);
}

function printReasons(label: string) {
  const reasons = fleetReasons(running.workers).slice(0, 6);
  if (reasons.length === 0) return;
  console.log(`${label}:\n${reasons.map(([r, n]) => `    ${n} × ${r}`).join("\n")}`);
}

function printRestart(r: Restart, expected: number) {
  line(
    `restart ${r.signal}: all ${expected} streams back after the signal`,
    r.controllerBackMs === undefined
      ? `not within ${s(timeoutMs)} (${r.reached} back)`
      : `${s(r.controllerBackMs)} (${s(r.controllerBackMs - r.servingMs)} after it was serving; ` +
        `daemons' count ${s(r.daemonsBackMs)})`,
  );
  line(
    `restart ${r.signal}: detail`,
    `old process gone ${s(r.stoppedMs)} after the signal (exit ${r.exitCode}), new one serving ` +
      `${s(r.servingMs)} after it; ${r.attempts} stream attempts, ${r.goaways} GOAWAYs; ` +
      `CPU until all back: new controller ${s(r.controllerCpuMs)}, workers ${s(r.workersCpuMs)}`,
  );
  const reasons = r.reasons.slice(0, 6);
  if (reasons.length) {
    console.log(
      `  failed stream attempts in this restart:\n` +
        reasons.map(([reason, n]) => `    ${n} × ${reason}`).join("\n"),
    );
  }
}

async function coldStart(expected: number) {
  const connecting = Date.now();
  await Promise.all(running.workers.map((w) => w.send("connect")));
  const cold = await waitConnected(
    running.controller!,
    running.workers,
    expected,
    timeoutMs,
    console.error,
  );
  line(
    `cold start: all ${expected} streams up`,
    cold.controllerAt === undefined
      ? `not within ${s(timeoutMs)} (${cold.reached} up)`
      : `${s(cold.controllerAt - connecting)} (${values["connect-concurrency"]} first connects ` +
        `at a time per worker)`,
  );
  printReasons("  failed stream attempts so far");
  results.coldStartMs = cold.controllerAt && cold.controllerAt - connecting;
}

/** Memory with the fleet connected, against `before` (enrolled, no streams). */
async function memoryPhase(
  atStart: ControllerReport,
  before: ControllerReport,
  workersBefore: number[],
) {
  await sleep(3000); // the last Hellos' database writes settle
  const withStreams = await running.controller!.report();
  const held = withStreams.streams;
  const workersWith = await workersRss();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const perStream = (a: number, b: number) => (a - b) / Math.max(1, held) / KiB;
  const rssPerStream = perStream(withStreams.rss, before.rss);
  const heapPerStream = perStream(withStreams.heapUsed, before.heapUsed);
  const workerPerStream = perStream(sum(workersWith), sum(workersBefore));
  Object.assign(results, {
    held,
    controller: {
      rssStartMiB: round(atStart.rss / MiB),
      rssBeforeMiB: round(before.rss / MiB),
      rssWithMiB: round(withStreams.rss / MiB),
      rssPerStreamKiB: round(rssPerStream),
      heapPerStreamKiB: round(heapPerStream),
    },
    workerRssPerStreamKiB: round(workerPerStream),
  });
  line(`controller RSS with ${held} streams`, mib(withStreams.rss));
  line("controller RSS per stream", `${rssPerStream.toFixed(1)} KiB`);
  line("controller heap kept per stream (after GC)", `${heapPerStream.toFixed(1)} KiB`);
  line(
    "worker RSS per stream",
    `${workerPerStream.toFixed(1)} KiB (largest worker ${mib(Math.max(...workersWith))} ` +
      `for ${Math.ceil(held / W)} streams)`,
  );
  return held;
}

async function cpuPhase() {
  const cpu: CpuWindow = await idleCpu(running.controller!, running.workers, Number(values.window));
  results.heartbeatCpu = {
    ...cpu,
    controllerCpuMs: Math.round(cpu.controllerCpuMs),
    coreFraction: round(cpu.coreFraction, 4),
    workersCoreFraction: round(cpu.workersCoreFraction, 4),
  };
  line(
    `heartbeat CPU (${cpu.seconds} s idle window, ${cpu.streamsAtEnd} streams)`,
    `${cpu.coreFraction.toFixed(3)} of one core (${cpu.controllerCpuMs.toFixed(0)} ms CPU; ` +
      `${cpu.heartbeatsAcked} heartbeats acked, ${
        (cpu.heartbeatsAcked / cpu.seconds).toFixed(0)
      }/s; the workers used ${cpu.workersCoreFraction.toFixed(3)} of one core)`,
  );
}

async function echoPhase(baseUrl: string, nodeIds: string[], held: number) {
  const operator = (await running.controller!.command<{ token: string }>("token bench operator"))
    .token;
  const echo = await echoCalls(
    baseUrl,
    operator,
    nodeIds,
    Number(values.calls),
    Number(values.warmup),
  );
  results.echo = {
    ...echo,
    p50: round(echo.p50, 2),
    p90: round(echo.p90, 2),
    p99: round(echo.p99, 2),
    max: round(echo.max, 2),
  };
  line(`echo p50 (${held} streams, n=${echo.n})`, `${echo.p50.toFixed(2)} ms`);
  line(`echo p99 (${held} streams, n=${echo.n})`, `${echo.p99.toFixed(2)} ms`);
  line("echo p90 / max", `${echo.p90.toFixed(2)} / ${echo.max.toFixed(2)} ms`);
  if (echo.failed) line("echo calls failed", `${echo.failed}: ${echo.lastError}`);
}

async function restartPhase(configPath: string, dataDir: string, port: number, expected: number) {
  const restarts: Restart[] = [];
  results.restarts = restarts;
  for (const signal of values.restart.split(",").map((x) => x.trim()) as Deno.Signal[]) {
    // A settled fleet: a daemon whose stream is younger than HEALTHY_AFTER_MS counts a drop as
    // one more failure of the outage before (by design: a stream dropped at once must not loop
    // hot), so a restart right after a herd measures that outage's backoff, not this restart.
    await sleep(HEALTHY_AFTER_MS + 2000);
    const { result } = await restart(
      running.controller!,
      running.workers,
      signal,
      expected,
      Number(values.down) * 1000,
      timeoutMs,
      async () => (await startController(configPath, dataDir, port)).child,
      console.error,
    );
    restarts.push(result);
    printRestart(result, expected);
  }
  printReasons("  failed stream attempts, all phases");
}

async function main() {
  const db = await testDatabase();
  running.cleanups.push(() => db.cleanup());
  const root = await Deno.makeTempDir({ prefix: "aegis-scale-bench-" });
  running.cleanups.push(() => Deno.remove(root, { recursive: true }));
  const dataDir = `${root}/controller`;
  await Deno.mkdir(dataDir);
  const configPath = `${root}/aegis-config.yaml`;
  await Deno.writeTextFile(configPath, controllerYaml(db.dsn));
  Object.assign(results, { bench: "scale", db: db.kind, streams: N, workers: W, heartbeatSecs });
  console.log(
    `# scale bench on ${db.kind} (${Deno.build.os}/${Deno.build.arch}, ` +
      `${navigator.hardwareConcurrency} cores): ${N} streams in ${W} worker processes, ` +
      `heartbeat ${heartbeatSecs} s`,
  );

  const { port } = await startController(configPath, dataDir, 0);
  const baseUrl = `http://127.0.0.1:${port}`;
  const atStart = await running.controller!.report();
  line("controller RSS at start", mib(atStart.rss));
  const enrollment = await enroll(baseUrl, root);
  const expected = enrollment.enrolled;
  results.enrollment = {
    enrolled: expected,
    failed: enrollment.failed,
    ms: Math.round(enrollment.ms),
    perSec: Math.round(expected / (enrollment.ms / 1000)),
  };
  const before = await running.controller!.report();
  const workersBefore = await workersRss();
  line(
    "controller RSS before streams",
    `${mib(before.rss)} (heap after GC ${mib(before.heapUsed)})`,
  );

  await coldStart(expected);
  const held = await memoryPhase(atStart, before, workersBefore);
  await cpuPhase();
  if (!values["no-calls"]) await echoPhase(baseUrl, enrollment.nodeIds, held);
  if (!values["no-restart"]) await restartPhase(configPath, dataDir, port, expected);
  console.log(JSON.stringify(results));
}

function round(x: number, digits = 1): number {
  return Number(x.toFixed(digits));
}

let code = 0;
try {
  await main();
} catch (error) {
  console.error(`✖ ${(error as Error).stack ?? error}`);
  if (running.controller) console.error(`controller log tail:\n${running.controller.stderrTail}`);
  code = 1;
} finally {
  await cleanup();
}
Deno.exit(code);
