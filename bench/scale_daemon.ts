// One simulated daemon of the scale bench: the daemon's real stream code (createNodeClient,
// EdgeConnection: signed Hello, sealed envelopes) and its reconnect pacing (full-jitter backoff,
// the controller's GOAWAY hint, a refusal's return time), without its disk state. It heartbeats
// at the interval the controller's HelloAck names and hands tool calls to a runner the worker's
// daemons share.
import type { EdgeConfig } from "../shared/config/edge_config.ts";
import type { Endpoint } from "../shared/endpoint.ts";
import { AegisError } from "../shared/errors.ts";
import { createNodeClient } from "../agent/client/node_client.ts";
import { EdgeConnection } from "../agent/daemon/connection.ts";
import {
  backoffDelay,
  backoffPolicy,
  refusalDelay,
  refusalRetryAfterMs,
  sleep,
} from "../agent/daemon/backoff.ts";
import { toolCallRequest, type ToolRunner } from "../agent/tools/mod.ts";
import type { SimulatedNode } from "./support.ts";

/** What the daemons of one worker share: config, runner, counters. */
export interface DaemonFleet {
  endpoint: Endpoint;
  config: EdgeConfig;
  runner: ToolRunner;
  /** Which connection a running call's events go out on (the runner is shared). */
  callsOn: Map<string, SimulatedDaemon>;
  signal: AbortSignal;
  counters: FleetCounters;
}

export interface FleetCounters {
  connected: number;
  attempts: number;
  failures: number;
  goaways: number;
  heartbeats: number;
  acks: number;
  calls: number;
  reasons: Record<string, number>;
}

export function newCounters(): FleetCounters {
  return {
    connected: 0,
    attempts: 0,
    failures: 0,
    goaways: 0,
    heartbeats: 0,
    acks: 0,
    calls: 0,
    reasons: {},
  };
}

/** A stream up this long (or acked a heartbeat) resets the backoff, as in agent/daemon. */
export const HEALTHY_AFTER_MS = 10_000;

/** Failed attempts after which a daemon stops holding its cold-start slot. */
const FIRST_TRIES = 3;

export class SimulatedDaemon {
  connection?: EdgeConnection;
  readonly calls = new Set<string>();
  #failures = 0;
  /** Refusals in a row that named a turn, as the daemon counts them. */
  #refusals = 0;
  #failingSince?: number;

  constructor(
    readonly fleet: DaemonFleet,
    readonly node: SimulatedNode,
    readonly localAddress: string,
    readonly name: string,
  ) {}

  /**
   * Serves streams until the fleet's signal aborts. `first` is called once a stream is up, or
   * after FIRST_TRIES failed attempts: the worker's cold start gates on it, so that daemons whose
   * first connect fails (an overloaded controller) do not let the whole fleet in behind them.
   */
  async run(first: () => void): Promise<void> {
    let tries = 0;
    const { signal } = this.fleet;
    const policy = backoffPolicy(this.fleet.config.edge);
    while (!signal.aborted) {
      let retryAfterMs: number | undefined;
      let refusedFor: number | undefined;
      try {
        retryAfterMs = await this.#serveOne(first);
      } catch (error) {
        this.#failed(error);
        if (error instanceof AegisError) refusedFor = refusalRetryAfterMs(error, policy);
        this.#refusals = refusedFor === undefined ? 0 : this.#refusals + 1;
      }
      if (++tries >= FIRST_TRIES) first();
      if (signal.aborted) break;
      const failingFor = this.#failingSince === undefined ? 0 : Date.now() - this.#failingSince;
      await sleep(
        refusedFor !== undefined
          ? refusalDelay(refusedFor, this.#refusals, policy)
          : (retryAfterMs ?? 0) + backoffDelay(this.#failures, policy, Math.random, failingFor),
        signal,
      );
    }
  }

  /** A stream that failed to open, or ended before it was healthy: the backoff grows. */
  #unhealthy(): void {
    this.#failures++;
    this.#failingSince ??= Date.now();
  }

  #failed(error: unknown): void {
    this.#unhealthy();
    const counters = this.fleet.counters;
    counters.failures++;
    const message = error instanceof AegisError ? `${error.code}: ${error.message}` : String(error);
    const reason = message.replace(/\d+/g, "N").slice(0, 80);
    counters.reasons[reason] = (counters.reasons[reason] ?? 0) + 1;
  }

  #healthy(): void {
    this.#failures = 0;
    this.#refusals = 0;
    this.#failingSince = undefined;
  }

  async #serveOne(first: () => void): Promise<number | undefined> {
    const { fleet } = this;
    const { counters } = fleet;
    const edge = fleet.config.edge;
    counters.attempts++;
    const client = await createNodeClient(fleet.endpoint, {
      http2: {
        keepaliveMs: edge.keepalive_interval_secs * 1000,
        keepaliveTimeoutMs: edge.keepalive_timeout_secs * 1000,
        localAddress: this.localAddress,
      },
    });
    let connection: EdgeConnection;
    try {
      connection = await EdgeConnection.open(
        client,
        fleet.endpoint,
        this.node,
        fleet.config,
        this.name,
        undefined,
        { failures: this.#failures },
      );
    } catch (error) {
      client.close();
      throw error;
    }
    const stopWatching = client.onBroken((reason) => connection.fail(reason));
    const stop = () => connection.close();
    fleet.signal.addEventListener("abort", stop, { once: true });
    if (fleet.signal.aborted) stop();
    this.connection = connection;
    counters.connected++;
    first();
    const intervalMs = (connection.helloAck.heartbeatIntervalSecs || edge.heartbeat_interval_secs) *
      1000;
    const started = Date.now();
    let healthy = false;
    const healthyTimer = setTimeout(() => {
      healthy = true;
      this.#healthy();
    }, Math.min(intervalMs, HEALTHY_AFTER_MS));
    const heartbeat = setInterval(() => {
      counters.heartbeats++;
      connection.send({
        case: "heartbeat",
        value: {
          runningCalls: this.calls.size,
          runningCallIds: [...this.calls],
          uptimeSecs: BigInt(Math.floor((Date.now() - started) / 1000)),
        } as never,
      });
    }, intervalMs);
    try {
      for await (const message of connection.messages()) {
        const body = message.body;
        if (body.case === "heartbeatAck") {
          counters.acks++;
          healthy = true;
          this.#healthy();
        } else if (body.case === "toolCall") {
          counters.calls++;
          this.calls.add(body.value.callId);
          fleet.callsOn.set(body.value.callId, this);
          fleet.runner.start(toolCallRequest(body.value));
        } else if (body.case === "toolCancel") {
          fleet.runner.cancel(body.value.callId, body.value.reason);
        } else if (body.case === "goaway") {
          counters.goaways++;
          if (!healthy) this.#unhealthy();
          return body.value.retryAfterMs;
        }
      }
      if (!healthy) this.#unhealthy();
      return undefined;
    } finally {
      counters.connected--;
      clearInterval(heartbeat);
      clearTimeout(healthyTimer);
      stopWatching();
      fleet.signal.removeEventListener("abort", stop);
      if (this.connection === connection) this.connection = undefined;
      connection.close();
      client.close();
    }
  }
}

/** The worker's one runner sends each event on the stream its call arrived on. */
export function routeEvents(callsOn: Map<string, SimulatedDaemon>) {
  return (callId: string, event: { case: string | undefined }) => {
    const daemon = callsOn.get(callId);
    if (!daemon) return;
    if (event.case === "exit" || event.case === "refused") {
      callsOn.delete(callId);
      daemon.calls.delete(callId);
    }
    daemon.connection?.send({ case: "toolEvent", value: { callId, event } as never });
  };
}
