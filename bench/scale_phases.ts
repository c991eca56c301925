// The scale bench's measurements, one function each: issuing tokens, waiting for the fleet to be
// connected, the idle (heartbeat) CPU window, echo round trips, and a controller restart.
import { percentile, pool } from "./support.ts";
import type { ControllerChild, WorkerChild } from "./scale_children.ts";
import type { ControllerReport } from "./scale_controller.ts";
import type { WorkerReport } from "./scale_worker.ts";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The workers' reports summed (counters) or listed. */
export function fleetSum(workers: WorkerChild[], field: keyof WorkerReport): number {
  return workers.reduce((n, w) => n + Number(w.last?.[field] ?? 0), 0);
}

/** Failed stream attempts by reason over all workers, most frequent first. */
export function fleetReasons(workers: WorkerChild[]): [string, number][] {
  const all: Record<string, number> = {};
  for (const w of workers) {
    for (const [reason, n] of Object.entries(w.last?.reasons ?? {})) {
      all[reason] = (all[reason] ?? 0) + n;
    }
  }
  return Object.entries(all).sort((a, b) => b[1] - a[1]);
}

/** `count` enrollment tokens through REST, `concurrency` requests at a time. */
export async function issueTokens(
  baseUrl: string,
  operator: string,
  count: number,
  concurrency = 32,
): Promise<string[]> {
  const tokens: string[] = [];
  await pool(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => {
    const response = await fetch(`${baseUrl}/v1/edge/enrollment-tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `scale-${i}` }),
    });
    if (response.status !== 201) {
      throw new Error(`issuing a token: ${response.status} ${await response.text()}`);
    }
    tokens.push((await response.json()).token);
  });
  return tokens;
}

export interface Arrival {
  /** Streams the controller held at the end (all of them unless it timed out). */
  reached: number;
  /** When the controller held them all, and when the daemons counted them all up. */
  controllerAt?: number;
  daemonsAt?: number;
}

/** Polls (every 250 ms) until the controller and the workers both count `expected` streams. */
export async function waitConnected(
  controller: ControllerChild,
  workers: WorkerChild[],
  expected: number,
  timeoutMs: number,
  progress: (text: string) => void = () => {},
  progressEveryMs = 15_000,
): Promise<Arrival> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const arrival: Arrival = { reached: 0 };
  let said = started;
  while (Date.now() < deadline) {
    if (Date.now() - said >= progressEveryMs) {
      said = Date.now();
      const seconds = ((said - started) / 1000).toFixed(0);
      progress(`  … ${arrival.reached}/${expected} streams held after ${seconds} s`);
    }
    const stats = await controller.stats().catch(() => undefined);
    arrival.reached = stats?.streams ?? 0;
    if (arrival.controllerAt === undefined && arrival.reached >= expected) {
      arrival.controllerAt = Date.now();
    }
    if (arrival.daemonsAt === undefined && fleetSum(workers, "connected") >= expected) {
      arrival.daemonsAt = Date.now();
    }
    if (arrival.controllerAt !== undefined && arrival.daemonsAt !== undefined) return arrival;
    await sleep(250);
  }
  return arrival;
}

export interface CpuWindow {
  seconds: number;
  controllerCpuMs: number;
  /** Controller CPU time over wall time: 1 is one core busy all the time. */
  coreFraction: number;
  workersCoreFraction: number;
  heartbeatsAcked: number;
  streamsAtEnd: number;
}

/** Controller (and workers') CPU over `seconds` of wall time while the fleet only heartbeats. */
export async function idleCpu(
  controller: ControllerChild,
  workers: WorkerChild[],
  seconds: number,
): Promise<CpuWindow> {
  const cpu = (r: ControllerReport | WorkerReport) => r.cpuUserMs + r.cpuSystemMs;
  const workersCpu = () => workers.reduce((n, w) => n + (w.last ? cpu(w.last) : 0), 0);
  const acks0 = fleetSum(workers, "acks");
  const workers0 = workersCpu();
  const before = await controller.stats();
  const started = performance.now();
  await sleep(seconds * 1000);
  const after = await controller.stats();
  const wallMs = performance.now() - started;
  // The workers report once a second: their numbers lag by up to that much at both ends.
  return {
    seconds,
    controllerCpuMs: cpu(after) - cpu(before),
    coreFraction: (cpu(after) - cpu(before)) / wallMs,
    workersCoreFraction: (workersCpu() - workers0) / wallMs,
    heartbeatsAcked: fleetSum(workers, "acks") - acks0,
    streamsAtEnd: after.streams,
  };
}

export interface EchoResult {
  n: number;
  failed: number;
  lastError?: string;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** One echo call over REST to `nodeId`; resolves with its milliseconds to the exit event. */
async function echoCall(baseUrl: string, operator: string, nodeId: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/v1/edge/hosts/${nodeId}/calls`, {
    method: "POST",
    headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
    body: JSON.stringify({ tool: "echo", arguments: { message: "ping" } }),
  });
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
  const text = await response.text();
  if (!/"type":"exit"/.test(text)) throw new Error(`no exit event: ${text.slice(-300)}`);
  return performance.now() - started;
}

/** `warmup` then `count` echo calls, one at a time, each to a random node of `nodeIds`. */
export async function echoCalls(
  baseUrl: string,
  operator: string,
  nodeIds: string[],
  count: number,
  warmup: number,
): Promise<EchoResult> {
  const pick = () => nodeIds[Math.floor(Math.random() * nodeIds.length)];
  const samples: number[] = [];
  let failed = 0;
  let lastError: string | undefined;
  for (let i = 0; i < warmup + count; i++) {
    try {
      const ms = await echoCall(baseUrl, operator, pick());
      if (i >= warmup) samples.push(ms);
    } catch (error) {
      failed++;
      lastError = (error as Error).message;
    }
  }
  samples.sort((a, b) => a - b);
  return {
    n: samples.length,
    failed,
    lastError,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: samples.at(-1) ?? NaN,
  };
}

export interface Restart {
  signal: Deno.Signal;
  exitCode: number;
  /** From the signal: the old process gone, the new one serving, all streams back. */
  stoppedMs: number;
  servingMs: number;
  controllerBackMs?: number;
  daemonsBackMs?: number;
  reached: number;
  attempts: number;
  goaways: number;
  /** Failed stream attempts in this restart, by reason, most frequent first. */
  reasons: [string, number][];
  /** The new controller's CPU (user + system) from its start until the fleet was back. */
  controllerCpuMs?: number;
  /** The workers' CPU from the signal until the fleet was back (the daemons' side of the herd). */
  workersCpuMs: number;
}

/**
 * Stops the controller with `signal`, starts it again (same port and data dir) after `downMs`,
 * and times the fleet's return. `start` launches the new process and hands it over.
 */
export async function restart(
  controller: ControllerChild,
  workers: WorkerChild[],
  signal: Deno.Signal,
  expected: number,
  downMs: number,
  timeoutMs: number,
  start: () => Promise<ControllerChild>,
  progress: (text: string) => void = () => {},
): Promise<{ result: Restart; controller: ControllerChild }> {
  const attempts0 = fleetSum(workers, "attempts");
  const goaways0 = fleetSum(workers, "goaways");
  const reasons0 = new Map(fleetReasons(workers));
  const workersCpu = () =>
    workers.reduce((n, w) => n + (w.last ? w.last.cpuUserMs + w.last.cpuSystemMs : 0), 0);
  const workersCpu0 = workersCpu();
  const signalled = Date.now();
  const status = await controller.stop(signal);
  const stopped = Date.now();
  // The workers report once a second: let them say their streams dropped before counting again.
  for (let i = 0; i < 12 && fleetSum(workers, "connected") >= expected; i++) await sleep(250);
  if (downMs > 0) await sleep(downMs);
  const next = await start();
  const serving = Date.now();
  // Every 5 s: the arrival curve shows whether the fleet waited on the controller or on itself.
  const arrival = await waitConnected(next, workers, expected, timeoutMs, progress, 5_000);
  const herd = await next.stats().catch(() => undefined);
  const workersCpuMs = Math.round(workersCpu() - workersCpu0);
  await sleep(1500); // the workers' last reports of the window
  return {
    controller: next,
    result: {
      signal,
      exitCode: status.code,
      stoppedMs: stopped - signalled,
      servingMs: serving - signalled,
      controllerBackMs: arrival.controllerAt && arrival.controllerAt - signalled,
      daemonsBackMs: arrival.daemonsAt && arrival.daemonsAt - signalled,
      reached: arrival.reached,
      attempts: fleetSum(workers, "attempts") - attempts0,
      goaways: fleetSum(workers, "goaways") - goaways0,
      controllerCpuMs: herd && Math.round(herd.cpuUserMs + herd.cpuSystemMs),
      workersCpuMs,
      reasons: fleetReasons(workers)
        .map(([reason, n]): [string, number] => [reason, n - (reasons0.get(reason) ?? 0)])
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1]),
    },
  };
}
