// Fleet key rotation over many simulated daemons, and the LISTEN/NOTIFY hop between relays.
// A simulated daemon is the real daemon code for this path (stream, node tool, dual-signed
// rotation, file swap) with its own state directory; many of them share this process.
//
//   deno task bench:fleet [--daemons 1000] [--modes rolling=10,parallel] [--runs 1] [--deadline 120]
//   (the NOTIFY hop needs AEGIS_TEST_PG_DSN)
//
// Each run rotates every daemon once. Between runs the daemons move their streams to the new
// key, as the real daemon does at its next heartbeat, so every run starts from current streams.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { parseEndpoint } from "../shared/endpoint.ts";
import { parseEdgeConfig, renderEdgeConfig } from "../shared/config/edge_config.ts";
import { ensureDir, writeFileAtomic } from "../shared/fs/atomic.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { EdgeConnection } from "../agent/daemon/connection.ts";
import { runNodeTool } from "../agent/daemon/node_tools.ts";
import { loadIdentity } from "../agent/state/identity.ts";
import { type EdgePaths, edgePaths } from "../agent/state/paths.ts";
import { openDb } from "../controller/store/db.ts";
import { type ControllerProcess, startControllerProcess } from "../tests/support/controller.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";
import {
  enrollOne,
  FLEET_FROM_ONE_ADDRESS,
  issueTokens,
  percentile,
  pool,
  rssKiB,
  type SimulatedNode,
} from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    daemons: { type: "string", default: "1000" },
    modes: { type: "string", default: "rolling=10,parallel" },
    runs: { type: "string", default: "1" },
    deadline: { type: "string", default: "120" },
  },
});
const count = Number(values.daemons);
const modes = values.modes.split(",").map((m) => m.trim()).filter(Boolean);
const runs = Number(values.runs);

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

function selfCpuSeconds(): number {
  return cpuSeconds(Deno.pid);
}

interface Daemon {
  client: NodeClient;
  connection: EdgeConnection;
  paths: EdgePaths;
  /** Resolves on the next heartbeat acknowledgement. */
  acked(): Promise<void>;
}

/**
 * This process hosts the whole simulated fleet, so all its daemons share one descriptor table: a
 * socket each, and while a node tool runs, its credential lock and the files it writes (a real
 * host has a table of its own). At 10,000 in parallel that overflowed the table (EMFILE: 547 of
 * 10,000 failed). Node tools beyond what the table holds wait for a turn here; the wait counts
 * in the measured time, so this can only make the bench slower, never faster.
 */
class Turns {
  #running = 0;
  #waiting: (() => void)[] = [];
  constructor(private readonly width: number) {}
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.width) await new Promise<void>((r) => this.#waiting.push(r));
    else this.#running++;
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

/** The soft limit on open files of this process (Linux), or undefined where unknown. */
function openFilesLimit(): number | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors a node tool may hold at once besides its daemon's socket (lock, a file). */
const FILES_PER_TOOL = 2;
/** Left for everything else: the controller's API, PostgreSQL, the runtime's own. */
const SPARE_FILES = 1024;
const fileLimit = openFilesLimit();
const toolTurns = new Turns(
  fileLimit === undefined
    ? Infinity
    : Math.max(16, Math.floor((fileLimit - count - SPARE_FILES) / FILES_PER_TOOL)),
);

/** Daemon-side time of each node tool (call received → answer sent), in ms. */
let toolSamples: number[] = [];
/** Of that, the rotation's RPC (sent → answered), in ms. */
let rpcSamples: number[] = [];

async function simulatedDaemon(
  endpointUrl: string,
  node: SimulatedNode,
  root: string,
): Promise<Daemon> {
  const paths = edgePaths(`${root}/${node.nodeId}`);
  await ensureDir(paths.dir, 0o700);
  const config = parseEdgeConfig(`cluster:\n  endpoints: ["${endpointUrl}"]\n`);
  await writeFileAtomic(paths.config, renderEdgeConfig(config), { mode: 0o600 });
  await writeFileAtomic(paths.key, node.key.toPem(), { mode: 0o600 });
  await writeFileAtomic(paths.nodeToken, node.token + "\n", { mode: 0o600 });
  const endpoint = parseEndpoint(endpointUrl);
  const client = await createNodeClient(endpoint);
  // The rotation's RPC timed on its own: the rest of the node tool is the daemon's local work.
  const rotate = client.rotateEdgeKey.bind(client);
  client.rotateEdgeKey = async (...args: Parameters<typeof rotate>) => {
    const started = performance.now();
    try {
      return await rotate(...args);
    } finally {
      rpcSamples.push(performance.now() - started);
    }
  };
  const connection = await EdgeConnection.open(client, endpoint, node, config, hostname());
  const emit = (callId: string, event: unknown) =>
    connection.send({ case: "toolEvent", value: { callId, event } as never });
  let onAck: (() => void) | undefined;
  // Heartbeats as the real daemon sends them: a silent stream is ended by the controller's
  // watchdog, which a fleet that takes minutes to enroll and connect would otherwise hit.
  const beat = setInterval(() => {
    connection.send({
      case: "heartbeat",
      value: { runningCalls: 0, runningCallIds: [], uptimeSecs: 0n } as never,
    });
  }, (connection.helloAck.heartbeatIntervalSecs || 30) * 1000);
  (async () => {
    for await (const message of connection.messages()) {
      if (message.body.case === "toolCall") {
        const call = message.body.value;
        const started = performance.now();
        void toolTurns.run(() =>
          runNodeTool(call, paths, emit as never, () => {}, undefined, { client, endpoint })
        ).then(() => toolSamples.push(performance.now() - started));
      } else if (message.body.case === "heartbeatAck") {
        onAck?.();
      }
    }
  })().catch(() => {}).finally(() => clearInterval(beat));
  return {
    client,
    connection,
    paths,
    acked: () => new Promise<void>((resolve) => onAck = resolve),
  };
}

/** What the real daemon does at its next heartbeat after a rotation: seal with the new key. */
async function moveToNewKey(daemon: Daemon): Promise<void> {
  const identity = await loadIdentity(daemon.paths);
  daemon.connection.useIdentity({
    nodeId: identity.claims.sub,
    key: identity.key,
    token: identity.token,
  });
  const acked = daemon.acked();
  const sent = daemon.connection.send({
    case: "heartbeat",
    value: { runningCalls: 0, runningCallIds: [], uptimeSecs: 0n } as never,
  });
  // A stream that ended (reported as offline by the run) never answers: do not wait for it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<boolean>((resolve) =>
    timer = setTimeout(() => resolve(false), 10_000)
  );
  const ok = sent && await Promise.race([acked.then(() => true), gaveUp]);
  clearTimeout(timer);
  if (!ok) unanswered++;
}

/** Streams that did not acknowledge the move to the new key (ended, or too slow). */
let unanswered = 0;

/**
 * CPU seconds of the PostgreSQL backends serving the controller's database (0 on PGlite, which
 * runs inside the controller): the database shares the machine's cores with everything else.
 */
async function databaseCpuSeconds(controller: ControllerProcess): Promise<number> {
  const dsn = controller.db.dsn;
  if (!dsn) return 0;
  const sql = postgres(dsn, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ pid: number }[]>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
    let total = 0;
    for (const { pid } of rows) {
      try {
        total += cpuSeconds(pid);
      } catch {
        // A backend that ended meanwhile.
      }
    }
    return total;
  } finally {
    await sql.end();
  }
}

async function fleetRotate(controller: ControllerProcess, token: string, mode: string) {
  toolSamples = [];
  rpcSamples = [];
  const pid = controller.process.child.pid;
  const dbBefore = await databaseCpuSeconds(controller);
  const cpuBefore = cpuSeconds(pid);
  const selfBefore = selfCpuSeconds();
  const started = performance.now();
  const response = await controller.api("/v1/edge/fleet/operations", {
    method: "POST",
    token,
    body: JSON.stringify({
      operation: "keys.rotate",
      target: "all",
      mode,
      on_error: "continue",
      deadline_secs: Number(values.deadline),
    }),
  });
  const text = await response.text();
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const selfCpu = selfCpuSeconds() - selfBefore;
  const dbCpu = await databaseCpuSeconds(controller) - dbBefore;
  const summary = JSON.parse(text.trim().split("\n").at(-1)!);
  const samples = toolSamples.sort((a, b) => a - b);
  const rpcs = rpcSamples.sort((a, b) => a - b);
  console.log(
    `fleet keys rotate --mode ${mode}: ${seconds.toFixed(2)} s wall (${
      (count / seconds).toFixed(0)
    }/s), controller CPU ${cpu.toFixed(1)} s, daemons' CPU ${selfCpu.toFixed(1)} s, ` +
      `database CPU ${dbCpu.toFixed(1)} s, node tool p50 ${
        percentile(samples, 50).toFixed(1)
      } ms p99 ${percentile(samples, 99).toFixed(1)} ms (rotation RPC p50 ${
        percentile(rpcs, 50).toFixed(1)
      } ms p99 ${percentile(rpcs, 99).toFixed(1)} ms), controller RSS ${
        (rssKiB(pid) / 1024).toFixed(0)
      } MiB, ` +
      `results ${JSON.stringify(summary.counts ?? summary)}` + firstFailure(text),
  );
}

async function notifyHop(dsn: string) {
  const a = await openDb({ dsn });
  const b = await openDb({ dsn });
  const samples: number[] = [];
  let resolve: () => void = () => {};
  const stop = await b.listen("aegis_bench_hop", () => resolve());
  for (let i = 0; i < 200; i++) {
    const arrived = new Promise<void>((r) => resolve = r);
    const started = performance.now();
    await a.notify("aegis_bench_hop", String(i));
    await arrived;
    samples.push(performance.now() - started);
  }
  await stop();
  await a.close();
  await b.close();
  samples.sort((x, y) => x - y);
  console.log(
    `LISTEN/NOTIFY hop between two connections: p50 ${percentile(samples, 50).toFixed(2)} ms  p99 ${
      percentile(samples, 99).toFixed(2)
    } ms`,
  );
}

console.log(
  `# fleet bench on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores), ${count} daemons`,
);
if (fileLimit !== undefined && fileLimit - count - SPARE_FILES < count * FILES_PER_TOOL) {
  console.log(
    `# open files limit ${fileLimit}: at most ${
      Math.max(16, Math.floor((fileLimit - count - SPARE_FILES) / FILES_PER_TOOL))
    } node tools run at once in this process`,
  );
}
const controller = await startControllerProcess({
  edge: "attest_rate_limit_per_min: 1000000",
  yaml: FLEET_FROM_ONE_ADDRESS,
});
const root = await Deno.makeTempDir({ prefix: "aegis-fleet-bench-" });
const daemons: Daemon[] = [];
try {
  const setup = performance.now();
  const enroller = await createNodeClient(parseEndpoint(controller.endpoint));
  const nodes: SimulatedNode[] = [];
  await pool(
    await issueTokens(controller, count),
    16,
    async (t) => void nodes.push(await enrollOne(enroller, t)),
  );
  enroller.close();
  console.error(`enrolled ${count} in ${((performance.now() - setup) / 1000).toFixed(1)} s`);
  await pool(
    nodes,
    32,
    async (node) => void daemons.push(await simulatedDaemon(controller.endpoint, node, root)),
  );
  console.error(`connected ${count} in ${((performance.now() - setup) / 1000).toFixed(1)} s`);
  const operator = await controller.operatorToken("bench", "operator");
  // What the controller burns holding the fleet with nothing to do (sweeps, timers): a run's CPU
  // includes this for its whole wall time, so a slower run costs more CPU for the same work.
  const idleBefore = cpuSeconds(controller.process.child.pid);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  console.log(
    `controller CPU holding ${count} idle streams: ${
      ((cpuSeconds(controller.process.child.pid) - idleBefore) / 5).toFixed(2)
    } s/s`,
  );
  for (let run = 0; run < runs; run++) {
    for (const mode of modes) {
      await fleetRotate(controller, operator, mode);
      unanswered = 0;
      await pool(daemons, 32, moveToNewKey);
      if (unanswered > 0) console.error(`${unanswered} stream(s) did not take the new key`);
    }
  }
} finally {
  for (const d of daemons) {
    d.connection.close();
    d.client.close();
  }
  await controller.stop();
  await Deno.remove(root, { recursive: true });
}
const dsn = Deno.env.get("AEGIS_TEST_PG_DSN");
if (dsn) await notifyHop(dsn);
else console.log("LISTEN/NOTIFY hop: set AEGIS_TEST_PG_DSN to measure it on PostgreSQL");
Deno.exit(0);

/** Every reason a node was not ok, with how many nodes gave it (node ids and numbers folded). */
function firstFailure(ndjson: string): string {
  const reasons = new Map<string, number>();
  for (const line of ndjson.trim().split("\n")) {
    const event = JSON.parse(line);
    if (event.type !== "result" || event.status === "ok") continue;
    const reason = `${event.status}: ${
      String(event.detail).replace(/\bn-[0-9a-f]+/g, "n-…").replace(/\d+(\.\d+)?/g, "N")
    }`;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  if (reasons.size === 0) return "";
  const sorted = [...reasons].sort((a, b) => b[1] - a[1]);
  return `\n  not ok:\n${sorted.map(([reason, n]) => `    ${n} × ${reason}`).join("\n")}`;
}
