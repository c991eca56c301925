// The thundering herd: a fleet of real daemons (runDaemon, each with its own state directory,
// run by a few worker processes) against one controller process, which is killed and restarted.
// Measures how long the fleet takes to be Connected again, as the controller lists it, and the
// peak rate of stream attempts the fleet makes meanwhile: after SIGKILL (the daemons find out
// from their dead connections and back off with full jitter), and after SIGTERM (the controller
// drains with spread GOAWAY hints first). Then how long a blackholed path takes to be noticed:
// one daemon behind a fault proxy that stops passing bytes, with the default keepalive.
//
//   deno task bench:herd [--daemons 1000] [--workers 4] [--down 3] [--pg ADMIN_DSN]
//
// --pg runs the controller on a fresh database created through that admin DSN (dropped at the
// end); otherwise on PGlite in its data directory.
import { parseArgs } from "node:util";
import { parseEdgeConfig, renderEdgeConfig } from "../shared/config/edge_config.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { ensureDir, writeFileAtomic } from "../shared/fs/atomic.ts";
import { createNodeClient } from "../agent/client/node_client.ts";
import { runDaemon } from "../agent/daemon/daemon.ts";
import { edgePaths } from "../agent/state/paths.ts";
import type { ControllerProcess } from "../tests/support/controller.ts";
import { FaultProxy } from "../tests/support/fault_proxy.ts";
import {
  enrollOne,
  FLEET_FROM_ONE_ADDRESS,
  issueTokens,
  pool,
  type SimulatedNode,
} from "./support.ts";
import type { WorkerReport } from "./herd_worker.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    daemons: { type: "string", default: "1000" },
    workers: { type: "string", default: "4" },
    down: { type: "string", default: "3" },
    pg: { type: "string" },
  },
});
const count = Number(values.daemons);
const workerCount = Number(values.workers);
const downMs = Number(values.down) * 1000;
// The test support picks its database from the environment when it loads: set it first.
if (values.pg) Deno.env.set("AEGIS_TEST_PG_DSN", values.pg);
const { startControllerProcess } = await import("../tests/support/controller.ts");
const { TEST_DB_KIND } = await import("../tests/support/db.ts");

const TENANT = "herd";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A worker process and the last thing it reported. */
interface Worker {
  child: Deno.ChildProcess;
  last: WorkerReport;
  done: Promise<void>;
  stderr: string;
}

/** Attempts per epoch second, summed over the workers. */
const attemptsPerSecond = new Map<number, number>();

function startWorker(listFile: string): Worker {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", new URL("./herd_worker.ts", import.meta.url).pathname, listFile],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const worker: Worker = {
    child,
    last: { connected: 0, attempts: [], goaways: 0, exited: 0, reasons: {} },
    done: Promise.resolve(),
    stderr: "",
  };
  const reading = (async () => {
    let buffered = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += text;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const report = JSON.parse(line) as WorkerReport;
        for (const [second, n] of report.attempts) {
          attemptsPerSecond.set(second, (attemptsPerSecond.get(second) ?? 0) + n);
        }
        worker.last = report;
      }
    }
  })();
  const errors = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      worker.stderr = (worker.stderr + text).slice(-4000);
    }
  })();
  worker.done = Promise.all([reading, errors]).then(() => {});
  return worker;
}

const fleetView = (workers: Worker[]) => ({
  connected: workers.reduce((n, w) => n + w.last.connected, 0),
  goaways: workers.reduce((n, w) => n + w.last.goaways, 0),
  exited: workers.reduce((n, w) => n + w.last.exited, 0),
  reasons: workers.reduce((all, w) => {
    for (const [reason, n] of Object.entries(w.last.reasons)) all[reason] = (all[reason] ?? 0) + n;
    return all;
  }, {} as Record<string, number>),
});

/** Failed attempts by reason between two views, most frequent first. */
function reasonsBetween(before: Record<string, number>, after: Record<string, number>): string {
  return Object.entries(after)
    .map(([reason, n]) => [reason, n - (before[reason] ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `    ${n} × ${reason}`)
    .join("\n") || "    none";
}

/** Hosts the controller lists as Connected on a stream that said Hello at or after `since`. */
async function connectedSince(
  controller: ControllerProcess,
  token: string,
  since: number,
): Promise<number> {
  try {
    const response = await controller.api("/v1/edge/hosts", { token });
    if (!response.ok) {
      await response.body?.cancel();
      return 0;
    }
    const { hosts } = await response.json() as { hosts: { status: string; since: string }[] };
    return hosts.filter((h) => h.status === "Connected" && Date.parse(h.since) >= since).length;
  } catch {
    return 0; // down, or restarting
  }
}

/**
 * Polls (every 500 ms) until the controller lists all `expected` hosts Connected since `from`;
 * returns when the daemons (the workers' view) and the controller (its list) got there.
 */
async function waitAllConnected(
  controller: ControllerProcess,
  token: string,
  workers: Worker[],
  from: number,
  expected: number,
  timeoutMs: number,
): Promise<{ daemonsAt?: number; controllerAt: number }> {
  let daemonsAt: number | undefined;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = fleetView(workers);
    if (daemonsAt === undefined && view.connected === expected) daemonsAt = Date.now();
    const listed = await connectedSince(controller, token, from);
    if (listed === expected) {
      return { daemonsAt: daemonsAt ?? Date.now(), controllerAt: Date.now() };
    }
    if (Date.now() > deadline) {
      throw new Error(
        `after ${seconds(timeoutMs)}: ${listed}/${expected} listed Connected, ` +
          `${view.connected} streams up by the daemons' count, ${view.exited} daemons exited`,
      );
    }
    await sleep(500);
  }
}

function attemptStats(fromMs: number, toMs: number) {
  const from = Math.floor(fromMs / 1000);
  const to = Math.floor(toMs / 1000);
  const series: number[] = [];
  for (let s = from; s <= to; s++) series.push(attemptsPerSecond.get(s) ?? 0);
  return {
    peak: Math.max(0, ...series),
    total: series.reduce((a, b) => a + b, 0),
    series,
  };
}

async function restartScenario(
  name: string,
  signal: Deno.Signal,
  controller: ControllerProcess,
  workers: Worker[],
) {
  const operator = await controller.operatorToken(TENANT, "readonly");
  await sleep(3000); // a quiet moment: heartbeats only
  const killedAt = Date.now();
  const goawaysBefore = fleetView(workers).goaways;
  const reasonsBefore = fleetView(workers).reasons;
  await controller.kill(signal);
  const stoppedAt = Date.now();
  await sleep(downMs);
  const reasonsWhileDown = fleetView(workers).reasons;
  await controller.start();
  const upAt = Date.now();
  // The token is signed with the controller's key, which stays across restarts.
  const { daemonsAt, controllerAt } = await waitAllConnected(
    controller,
    operator,
    workers,
    killedAt,
    count,
    180_000,
  );
  await sleep(1500); // the workers' last attempts of the window reach us
  const stats = attemptStats(killedAt, controllerAt);
  const view = fleetView(workers);
  console.log(
    `${name}: stopped in ${seconds(stoppedAt - killedAt)}, away ${seconds(downMs)}, ` +
      `serving again ${seconds(upAt - killedAt)} after the signal`,
  );
  console.log(
    `  all ${count} Connected again: ${seconds(controllerAt - killedAt)} after the signal, ` +
      `${seconds(controllerAt - upAt)} after the controller was back ` +
      `(the daemons' own count: ${seconds(daemonsAt! - upAt)} after it was back)`,
  );
  console.log(
    `  stream attempts: peak ${stats.peak}/s, ${stats.total} in all ` +
      `(${(stats.total / count).toFixed(1)} per daemon); GOAWAYs received ` +
      `${view.goaways - goawaysBefore}; daemons exited ${view.exited}`,
  );
  console.log(`  attempts per second from the signal on: ${stats.series.join(" ")}`);
  console.log(
    `  failed attempts while it was away:\n${reasonsBetween(reasonsBefore, reasonsWhileDown)}`,
  );
  console.log(
    `  failed attempts once it was back:\n${reasonsBetween(reasonsWhileDown, view.reasons)}`,
  );
}

/**
 * One daemon behind a fault proxy, default keepalive (20 s, 10 s) and heartbeat; its path is
 * blackholed: when does the daemon notice, and when does the controller stop listing it
 * Connected?
 */
async function blackholeScenario(controller: ControllerProcess, node: SimulatedNode, root: string) {
  const proxy = await FaultProxy.start(controller.port);
  const home = `${root}/blackhole`;
  await writeHome(home, node, proxy.endpoint);
  const stop = new AbortController();
  const log: { at: number; message: string }[] = [];
  let notify = () => {};
  const run = runDaemon({
    paths: edgePaths(home),
    signal: stop.signal,
    log: (message) => {
      log.push({ at: Date.now(), message });
      notify();
    },
  });
  const until = async (pattern: RegExp, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = log.find((entry) => pattern.test(entry.message));
      if (hit) return hit;
      if (Date.now() > deadline) {
        throw new Error(`no ${pattern} in:\n${log.map((e) => e.message).join("\n")}`);
      }
      await new Promise<void>((resolve) => {
        notify = resolve;
        setTimeout(resolve, 250);
      });
    }
  };
  try {
    await until(/stream connected/, 30_000);
    const token = await controller.operatorToken(TENANT, "readonly");
    await sleep(1000);
    const blackholedAt = Date.now();
    proxy.blackhole();
    const failed = await until(/stream to .* failed/, 120_000);
    let disconnectedAt: number | undefined;
    while (Date.now() - blackholedAt < 240_000) {
      const response = await controller.api(`/v1/edge/hosts/${node.nodeId}`, { token });
      const { status } = await response.json();
      if (status !== "Connected") {
        disconnectedAt = Date.now();
        break;
      }
      await sleep(250);
    }
    console.log(
      `blackholed path (keepalive 20 s + 10 s, heartbeat 30 s): the daemon's stream failed ` +
        `${seconds(failed.at - blackholedAt)} after the blackhole ("${failed.message}")`,
    );
    console.log(
      disconnectedAt === undefined
        ? "  the controller still listed it Connected 240 s after the blackhole"
        : `  the controller listed it Disconnected ${
          seconds(disconnectedAt - blackholedAt)
        } after the blackhole`,
    );
  } finally {
    stop.abort();
    proxy.pass();
    await run.catch(() => {});
    await proxy.stop();
  }
}

async function writeHome(home: string, node: SimulatedNode, endpoint: string): Promise<void> {
  const paths = edgePaths(home);
  await ensureDir(paths.dir, 0o700);
  const config = parseEdgeConfig(`cluster:\n  endpoints: ["${endpoint}"]\n`);
  await writeFileAtomic(paths.config, renderEdgeConfig(config), { mode: 0o600 });
  await writeFileAtomic(paths.key, node.key.toPem(), { mode: 0o600 });
  await writeFileAtomic(paths.nodeToken, node.token + "\n", { mode: 0o600 });
}

console.log(
  `# herd bench on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ` +
    `${navigator.hardwareConcurrency} cores): ${count} daemons in ${workerCount} worker processes`,
);
const controller = await startControllerProcess({
  edge: "attest_rate_limit_per_min: 1000000",
  yaml: FLEET_FROM_ONE_ADDRESS,
});
const root = await Deno.makeTempDir({ prefix: "aegis-herd-bench-" });
const workers: Worker[] = [];
try {
  const started = performance.now();
  const enroller = await createNodeClient(parseEndpoint(controller.endpoint));
  const nodes: SimulatedNode[] = [];
  await pool(
    await issueTokens(controller, count + 1, TENANT),
    16,
    async (token) => void nodes.push(await enrollOne(enroller, token)),
  );
  enroller.close();
  const lone = nodes.pop()!;
  const homes = nodes.map((_, i) => `${root}/d${i}`);
  await pool(nodes.map((node, i) => ({ node, home: homes[i] })), 32, async ({ node, home }) => {
    await writeHome(home, node, controller.endpoint);
  });
  console.log(`enrolled ${count + 1} hosts in ${seconds(performance.now() - started)}`);

  const operator = await controller.operatorToken(TENANT, "readonly");
  const startedAt = Date.now();
  for (let w = 0; w < workerCount; w++) {
    const listFile = `${root}/worker-${w}.json`;
    await Deno.writeTextFile(
      listFile,
      JSON.stringify(homes.filter((_, i) => i % workerCount === w)),
    );
    workers.push(startWorker(listFile));
  }
  const cold = await waitAllConnected(controller, operator, workers, startedAt, count, 300_000);
  const coldStats = attemptStats(startedAt, cold.controllerAt);
  console.log(
    `cold start: all ${count} Connected ${seconds(cold.controllerAt - startedAt)} after the ` +
      `workers started; stream attempts peak ${coldStats.peak}/s, ${coldStats.total} in all`,
  );

  await restartScenario("SIGKILL", "SIGKILL", controller, workers);
  await restartScenario(
    "SIGTERM (graceful: drains with spread GOAWAY hints)",
    "SIGTERM",
    controller,
    workers,
  );

  for (const worker of workers) {
    try {
      worker.child.kill("SIGTERM");
    } catch { /* gone */ }
  }
  await Promise.all(workers.map((w) => w.child.status));
  await Promise.all(workers.map((w) => w.done));
  const exited = fleetView(workers).exited;
  if (exited > 0) {
    console.log(
      `! ${exited} daemons exited: ${workers.find((w) => w.last.lastExit)?.last.lastExit}`,
    );
  }
  for (const worker of workers) if (worker.stderr) console.error(worker.stderr);
  workers.length = 0;

  await blackholeScenario(controller, lone, root);
} finally {
  for (const worker of workers) {
    try {
      worker.child.kill("SIGKILL");
    } catch { /* gone */ }
    if (worker.stderr) console.error(worker.stderr);
  }
  await controller.stop();
  await Deno.remove(root, { recursive: true }).catch(() => {});
}
Deno.exit(0);
