// Running a tool on a host: authorise, record, send the call down the node's stream (here, or on
// the relay holding it, over relay peering), relay its events to the caller in order, enforce the
// deadline and the caller's output cap, and record how it ended. Every call lands in the host's
// command history, including calls refused or sent to a host that was offline. A call whose
// output was not all delivered never ends as "ok".
//
// The database stays off the call's way where it can: a host whose stream is on this process is
// known from that stream (tenant, node id; a revoked node's stream is ended by the hub, so a held
// stream is a live node), and history rows go through a group-commit queue (call_records.ts). The
// call is sent to the node while its start row is being written (a call forwarded to another
// relay waits for it: that relay checks the row); the caller is told the call started only once
// that row is committed, and told how it ended only once that is committed.
import type { ToolEvent } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import type { BoundedQueue } from "../../shared/bounded_queue.ts";
import { AegisError } from "../../shared/errors.ts";
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { DaemonRecord, DaemonRepository } from "./daemons.ts";
import { CallRecords } from "./call_records.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import { callQueue } from "./call_registry.ts";
import {
  type ForwardedCall,
  isFinal,
  type RelayPeerLink,
  sendCall,
  sendCancel,
} from "./peer_calls.ts";
import { type Operator, requireWriter, tenantsOf } from "./operators.ts";

/** What the controller waits past the tool's own timeout before it gives up on the node. */
const DEADLINE_GRACE_MS = 10_000;
const MIB = 1024 * 1024;
/** The node's own default for cmd.run; other tools may send up to the ceiling. */
const DEFAULT_CMD_OUTPUT_BYTES = MIB;
/** The most output any call may carry (the node's argument schema has the same ceiling). */
export const MAX_OUTPUT_BYTES = 64 * MIB;
/** Room past max_output_bytes for the node's "[aegis: output truncated ...]" notice. */
const TRUNCATION_NOTICE_BYTES = 256;

export interface CallRequest {
  tool: string;
  arguments: Record<string, unknown>;
  timeoutSecs: number;
}

export type CallEvent =
  | { type: "started"; call_id: string; node_id: string }
  | { type: "stdout" | "stderr"; data: Uint8Array }
  | {
    type: "exit";
    exit_code: number;
    signal: string;
    timed_out: boolean;
    truncated: boolean;
    duration_ms: number;
    result_json: string;
  }
  | { type: "refused"; code: string; message: string };

export type CallStatus =
  | "ok"
  | "failed"
  | "timed_out"
  | "refused"
  | "offline"
  | "cancelled"
  | "disconnected"
  // Output was cut at max_output_bytes (by the node, or by the controller for a node that did not).
  | "truncated"
  // The caller read slower than the node wrote for too long; the call was stopped.
  | "cut_off";

/** What a call needs to know of its host. */
type CallHost = Pick<DaemonRecord, "node_id" | "tenant_id" | "status" | "relay_id">;

export class ToolCallService {
  readonly #records: CallRecords;

  constructor(
    private readonly db: Queryable,
    private readonly daemons: DaemonRepository,
    private readonly hub: EdgeHub,
    private readonly relayId: string,
    private readonly clock: Clock,
    private readonly peers?: RelayPeerLink,
  ) {
    this.#records = new CallRecords(db);
  }

  async *execute(
    operator: Operator,
    nodeId: string,
    request: CallRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<CallEvent> {
    requireWriter(operator, "run tools on hosts");
    const host = this.#liveHost(nodeId, operator) ??
      await this.daemons.require(nodeId, tenantsOf(operator));

    const callId = crypto.randomUUID();
    const started = this.clock();
    const recorded = this.#record(callId, host.tenant_id, nodeId, operator.sub, request, started);
    // Not awaited yet: the start row is written while the call travels (awaited below).
    recorded.catch(() => {});
    if (host.status === "revoked") {
      await this.#finish(callId, started, "refused", {
        error: "NODE_REVOKED: the host was revoked",
      });
      throw new AegisError("NODE_REVOKED", `host ${nodeId} was revoked`);
    }
    const route = this.#route(host);
    if (!route) {
      await this.#finish(callId, started, "offline", { error: "the host is not connected" });
      throw new AegisError("NODE_OFFLINE", `host ${nodeId} is not connected`);
    }

    const deadline = new Date(started.getTime() + request.timeoutSecs * 1000);
    // The relay holding the stream runs a forwarded call only once it sees the row.
    if (route.recordFirst) await recorded;
    let events: BoundedQueue<ToolEvent>;
    try {
      events = route.start({
        callId,
        nodeId,
        tool: request.tool,
        argumentsJson: JSON.stringify(request.arguments),
        deadline,
      });
    } catch (error) {
      await this.#finish(callId, started, "refused", { error: (error as Error).message });
      throw error;
    }
    try {
      // The caller is told the call started only once history holds it.
      await recorded;
    } catch (error) {
      route.cancel(callId, nodeId, "the call could not be recorded");
      route.end(callId);
      throw error;
    }
    yield { type: "started", call_id: callId, node_id: nodeId };

    const giveUp = setTimeout(() => {
      events.fail(
        new AegisError(
          "TIMED_OUT",
          `host ${nodeId} did not finish the call by its deadline (${route.where})`,
        ),
      );
    }, request.timeoutSecs * 1000 + DEADLINE_GRACE_MS);
    const onAbort = () => events.fail(new AegisError("ABORTED", "cancelled by the caller"));
    signal?.addEventListener("abort", onAbort, { once: true });

    const cap = outputCap(request);
    let outputBytes = 0;
    let nodeDone = false; // the node sent its final event: nothing left to cancel
    let ended = false;
    try {
      for await (const event of events) {
        const out = toCallEvent(event);
        if (!out) continue;
        if (out.type === "stdout" || out.type === "stderr") {
          const room = cap - outputBytes;
          if (out.data.length > room) {
            // A node that ignores max_output_bytes is stopped here, whatever it does.
            if (room > 0) yield { type: out.type, data: out.data.subarray(0, room) };
            outputBytes = cap;
            throw new AegisError(
              "OUTPUT_LIMIT",
              `host ${nodeId} sent more than max_output_bytes (${cap}); the call was stopped`,
              { details: { reason: "max_output_bytes" } },
            );
          }
          outputBytes += out.data.length;
        }
        if (isFinal(event)) nodeDone = true;
        if (out.type === "exit") {
          ended = true;
          await this.#finish(callId, started, exitStatus(out), {
            exitCode: out.exit_code,
            outputBytes,
            truncated: out.truncated,
          });
        } else if (out.type === "refused" && out.code === "NODE_OFFLINE") {
          ended = true;
          await this.#finish(callId, started, "offline", { error: out.message });
          throw new AegisError("NODE_OFFLINE", out.message);
        } else if (out.type === "refused") {
          ended = true;
          await this.#finish(callId, started, "refused", { error: `${out.code}: ${out.message}` });
        }
        yield out;
        if (nodeDone) return;
      }
      // The queue ended without the node's final event: output may be missing, so never "ok".
      throw new AegisError("UNREACHABLE", `the call ended without its result (${route.where})`);
    } catch (error) {
      const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
      if (!ended) {
        ended = true;
        await this.#finish(callId, started, failureStatus(aegis), {
          error: aegis.message,
          outputBytes,
          truncated: aegis.details.reason === "max_output_bytes",
        });
      }
      throw aegis;
    } finally {
      clearTimeout(giveUp);
      signal?.removeEventListener("abort", onAbort);
      route.end(callId);
      // Whatever stopped the call before the node finished it (deadline, caller gone, cap hit),
      // stop the node's work too.
      if (!nodeDone) route.cancel(callId, nodeId, "the call was stopped by the controller");
      if (!ended) {
        await this.#finish(callId, started, "cancelled", {
          error: "the caller went away",
          outputBytes,
        });
      }
    }
  }

  /**
   * The host as its stream on this process knows it, without reading the database: the stream
   * authenticated against the node's record when it opened, and a revocation since ends it
   * (at once here, via the relay bus on other relays, by the sweep at worst). Another tenant's
   * host is reported missing, exactly like DaemonRepository.require does.
   */
  #liveHost(nodeId: string, operator: Operator): CallHost | undefined {
    const session = this.hub.get(nodeId);
    const node = session?.credentials && session.node;
    if (!node) return undefined;
    if (!tenantsOf(operator).includes(node.tenantId)) {
      throw new AegisError("NOT_FOUND", `no edge host ${nodeId}`);
    }
    return {
      node_id: nodeId,
      tenant_id: node.tenantId,
      status: "connected",
      relay_id: this.relayId,
    };
  }

  /** Where the node's stream is: on this process, on another relay (peering), or nowhere. */
  #route(host: CallHost): Route | undefined {
    const session = this.hub.get(host.node_id);
    if (session) {
      return {
        where: `relay ${this.relayId}`,
        recordFirst: false,
        start: (c) => {
          const events = this.hub.calls.open(
            c.callId,
            c.nodeId,
            (reason) => sendCancel(session, c.callId, reason),
          );
          try {
            sendCall(session, c);
          } catch (error) {
            this.hub.calls.close(c.callId); // refused before it reached the node: nothing waits
            throw error;
          }
          return events;
        },
        end: (callId) => this.hub.calls.close(callId),
        cancel: (callId, _nodeId, reason) => sendCancel(session, callId, reason),
      };
    }
    const relay = host.relay_id;
    if (!this.peers || !relay || relay === this.relayId || host.status !== "connected") {
      return undefined;
    }
    return this.#remoteRoute(this.peers, relay);
  }

  /**
   * The node's stream is on relay `relay`: the call runs there, its events arrive over one
   * ForwardCall stream and are queued here only as fast as the caller reads (backpressure).
   * Cancelling is aborting that stream; the peer then stops the node's work.
   */
  #remoteRoute(peers: RelayPeerLink, relay: string): Route {
    const abort = new AbortController();
    const where = `relay ${relay}`;
    return {
      where,
      recordFirst: true,
      start: (c) => {
        const events = callQueue(this.hub.calls.limits, () => abort.abort());
        void pumpPeer(peers.forward(relay, c, abort.signal), events, where);
        return events;
      },
      end: () => {},
      cancel: () => abort.abort(),
    };
  }

  async history(nodeId: string, limit = 20): Promise<CallRecord[]> {
    return await this.db.query<CallRecord>(
      `SELECT call_id, tool, summary, requested_by, status, exit_code, error, started_at, finished_at,
              duration_ms, output_bytes, truncated
         FROM tool_calls WHERE node_id = $1 ORDER BY started_at DESC LIMIT $2`,
      [nodeId, limit],
    );
  }

  /** At start-up: calls this process was relaying when it stopped will never finish. */
  async interruptOrphans(): Promise<void> {
    await this.db.query(
      `UPDATE tool_calls SET status = 'interrupted', finished_at = $2, error = 'the controller restarted'
         WHERE relay_id = $1 AND status = 'running'`,
      [this.relayId, this.clock()],
    );
  }

  /** Resolves once every history row queued so far is written (shutdown, tests). */
  flushHistory(): Promise<void> {
    return this.#records.drain();
  }

  #record(
    callId: string,
    tenantId: string,
    nodeId: string,
    who: string,
    request: CallRequest,
    at: Date,
  ): Promise<void> {
    return this.#records.started({
      call_id: callId,
      node_id: nodeId,
      tenant_id: tenantId,
      tool: request.tool,
      summary: summarize(request),
      arguments: JSON.stringify(recordedArguments(request.arguments)),
      requested_by: who,
      relay_id: this.relayId,
      started_at: at,
    });
  }

  async #finish(
    callId: string,
    started: Date,
    status: CallStatus,
    result: { exitCode?: number; error?: string; outputBytes?: number; truncated?: boolean },
  ) {
    const finished = this.clock();
    await this.#records.ended({
      call_id: callId,
      status,
      exit_code: result.exitCode ?? null,
      error: result.error ?? null,
      finished_at: finished,
      duration_ms: finished.getTime() - started.getTime(),
      output_bytes: result.outputBytes ?? 0,
      truncated: result.truncated ?? false,
    });
  }
}

interface Route {
  where: string;
  /** The start row must be committed before the call is sent (a peer relay checks for it). */
  recordFirst: boolean;
  /** Sends the call on its way; its events arrive in the returned queue. */
  start(call: ForwardedCall): BoundedQueue<ToolEvent>;
  /** The call is over here: release what start() registered. */
  end(callId: string): void;
  cancel(callId: string, nodeId: string, reason: string): void;
}

/** Copies a peer relay's events into the call's queue; a broken peer stream fails the call. */
async function pumpPeer(
  stream: AsyncIterable<ToolEvent>,
  events: BoundedQueue<ToolEvent>,
  where: string,
): Promise<void> {
  try {
    for await (const event of stream) {
      if (!await events.put(event)) return; // the call ended here (or was cut off)
      if (isFinal(event)) return events.close();
    }
    events.fail(new AegisError("UNREACHABLE", `${where} ended the call without its result`));
  } catch (error) {
    const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
    events.fail(
      aegis.code === "UNREACHABLE" || aegis.code === "INTERNAL"
        ? new AegisError("UNREACHABLE", `${where} went away during the call: ${aegis.message}`)
        : aegis,
    );
  }
}

/** The most output bytes this call may deliver: the caller's max_output_bytes, capped. */
function outputCap(request: CallRequest): number {
  const asked = request.arguments.max_output_bytes;
  const base = typeof asked === "number" && asked > 0
    ? Math.min(asked, MAX_OUTPUT_BYTES)
    : request.tool === "cmd.run"
    ? DEFAULT_CMD_OUTPUT_BYTES
    : MAX_OUTPUT_BYTES;
  return base + TRUNCATION_NOTICE_BYTES;
}

function exitStatus(exit: Extract<CallEvent, { type: "exit" }>): CallStatus {
  if (exit.timed_out) return "timed_out";
  if (exit.truncated) return "truncated";
  return exit.exit_code === 0 ? "ok" : "failed";
}

function failureStatus(error: AegisError): CallStatus {
  switch (error.code) {
    case "TIMED_OUT":
      return "timed_out";
    case "ABORTED":
      return "cancelled";
    case "OUTPUT_LIMIT":
      return error.details.reason === "max_output_bytes" ? "truncated" : "cut_off";
    case "NODE_REVOKED":
      return "refused";
    default:
      return "disconnected";
  }
}

export interface CallRecord {
  call_id: string;
  tool: string;
  summary: string;
  requested_by: string;
  status: string;
  exit_code: number | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
  output_bytes: number;
  truncated: boolean;
}

function toCallEvent(event: ToolEvent): CallEvent | undefined {
  const e = event.event;
  switch (e.case) {
    case "stdout":
    case "stderr":
      return { type: e.case, data: e.value };
    case "exit":
      return {
        type: "exit",
        exit_code: e.value.exitCode,
        signal: e.value.signal,
        timed_out: e.value.timedOut,
        truncated: e.value.truncated,
        duration_ms: Number(e.value.durationMs),
        result_json: e.value.resultJson,
      };
    case "refused":
      return { type: "refused", code: e.value.code, message: e.value.message };
    default:
      return undefined;
  }
}

/** One line for history lists: the command as a person would type it. */
function summarize(request: CallRequest): string {
  const args = request.arguments;
  if (request.tool === "cmd.run") {
    if (Array.isArray(args.argv)) return args.argv.map(String).join(" ").slice(0, 500);
    if (typeof args.shell === "string") return args.shell.slice(0, 500);
  }
  return request.tool;
}

/**
 * History keeps what was asked, but not stdin (large or private) nor the values of environment
 * variables: those are how secrets are passed. Names stay, and so do `secret://NAME` references,
 * which name a secret held on the host rather than carry it.
 */
function recordedArguments(args: Record<string, unknown>): Record<string, unknown> {
  const recorded = { ...args };
  if (typeof args.stdin === "string") {
    recorded.stdin = `<${new TextEncoder().encode(args.stdin).length} bytes>`;
  }
  if (args.env && typeof args.env === "object" && !Array.isArray(args.env)) {
    recorded.env = Object.fromEntries(
      Object.entries(args.env).map(([name, value]) => [
        name,
        typeof value === "string" && /^secret:\/\/[^\s]*$/.test(value) ? value : "<redacted>",
      ]),
    );
  }
  return recorded;
}
