// Running a tool on a host: authorise, record, send the call down the node's stream, relay its
// events to the caller, enforce the deadline, and record how it ended. Every call lands in the
// host's command history, including calls refused or sent to a host that was offline.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ToolEvent } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { DaemonRecord, DaemonRepository } from "./daemons.ts";
import type { RelayBus } from "./relay_bus.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import { type Operator, requireWriter, tenantsOf } from "./operators.ts";

/** What the controller waits past the tool's own timeout before it gives up on the node. */
const DEADLINE_GRACE_MS = 10_000;

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
  | "disconnected";

export class ToolCallService {
  constructor(
    private readonly db: Queryable,
    private readonly daemons: DaemonRepository,
    private readonly hub: EdgeHub,
    private readonly relayId: string,
    private readonly clock: Clock,
    private readonly bus?: RelayBus,
  ) {}

  async *execute(
    operator: Operator,
    nodeId: string,
    request: CallRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<CallEvent> {
    requireWriter(operator, "run tools on hosts");
    const host = await this.daemons.require(nodeId, tenantsOf(operator));

    const callId = crypto.randomUUID();
    const started = this.clock();
    await this.#record(callId, host.tenant_id, nodeId, operator.sub, request, started);
    const route = this.#route(host);
    if (!route) {
      await this.#finish(callId, started, "offline", { error: "the host is not connected" });
      throw new AegisError("NODE_OFFLINE", `host ${nodeId} is not connected`);
    }

    const events = this.hub.calls.open(callId, nodeId);
    const deadline = new Date(started.getTime() + request.timeoutSecs * 1000);
    await route.call({
      callId,
      nodeId,
      tool: request.tool,
      argumentsJson: JSON.stringify(request.arguments),
      deadline,
    });
    yield { type: "started", call_id: callId, node_id: nodeId };

    const giveUp = setTimeout(() => {
      route.cancel(callId, nodeId, "deadline passed");
      events.fail(
        new AegisError(
          "TIMED_OUT",
          `host ${nodeId} did not finish the call by its deadline (${route.where})`,
        ),
      );
    }, request.timeoutSecs * 1000 + DEADLINE_GRACE_MS);
    const onAbort = () => {
      route.cancel(callId, nodeId, "the caller went away");
      events.fail(new AegisError("ABORTED", "cancelled by the caller"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });

    let outputBytes = 0;
    let ended = false;
    try {
      for await (const event of events) {
        const out = toCallEvent(event);
        if (!out) continue;
        if (out.type === "stdout" || out.type === "stderr") outputBytes += out.data.length;
        if (out.type === "exit") {
          ended = true;
          const status = out.timed_out ? "timed_out" : out.exit_code === 0 ? "ok" : "failed";
          await this.#finish(callId, started, status, {
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
        if (ended) return;
      }
    } catch (error) {
      const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
      const status: CallStatus = aegis.code === "TIMED_OUT"
        ? "timed_out"
        : aegis.code === "ABORTED"
        ? "cancelled"
        : "disconnected";
      await this.#finish(callId, started, status, { error: aegis.message, outputBytes });
      ended = true;
      throw aegis;
    } finally {
      clearTimeout(giveUp);
      signal?.removeEventListener("abort", onAbort);
      this.hub.calls.close(callId);
      // The caller stopped reading (its connection went away): stop the remote work too.
      if (!ended) {
        route.cancel(callId, nodeId, "the caller went away");
        await this.#finish(callId, started, "cancelled", {
          error: "the caller went away",
          outputBytes,
        });
      }
    }
  }

  /** Where the node's stream is: on this process, on another relay (via the bus), or nowhere. */
  #route(host: DaemonRecord): Route | undefined {
    const session = this.hub.get(host.node_id);
    if (session) {
      return {
        where: `relay ${this.relayId}`,
        call: (c) => {
          session.send({
            case: "toolCall",
            value: {
              callId: c.callId,
              tool: c.tool,
              argumentsJson: c.argumentsJson,
              deadline: timestampFromDate(c.deadline),
            } as never,
          });
          return Promise.resolve();
        },
        cancel: (callId, _nodeId, reason) =>
          void session.send({ case: "toolCancel", value: { callId, reason } as never }),
      };
    }
    const relay = host.relay_id;
    if (!this.bus || !relay || relay === this.relayId || host.status !== "connected") {
      return undefined;
    }
    const bus = this.bus;
    return {
      where: `relay ${relay}, which may have gone down`,
      call: (c) => bus.forwardCall(relay, c),
      cancel: (callId, nodeId, reason) =>
        void bus.forwardCancel(relay, callId, nodeId, reason).catch(() => {}),
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

  async #record(
    callId: string,
    tenantId: string,
    nodeId: string,
    who: string,
    request: CallRequest,
    at: Date,
  ) {
    await this.db.query(
      `INSERT INTO tool_calls (call_id, node_id, tenant_id, tool, summary, arguments, requested_by, relay_id, status, started_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, 'running', $9)`,
      [
        callId,
        nodeId,
        tenantId,
        request.tool,
        summarize(request),
        JSON.stringify(recordedArguments(request.arguments)),
        who,
        this.relayId,
        at,
      ],
    );
  }

  async #finish(
    callId: string,
    started: Date,
    status: CallStatus,
    result: { exitCode?: number; error?: string; outputBytes?: number; truncated?: boolean },
  ) {
    const finished = this.clock();
    await this.db.query(
      `UPDATE tool_calls SET status = $2, exit_code = $3, error = $4, finished_at = $5, duration_ms = $6,
              output_bytes = $7, truncated = $8
         WHERE call_id = $1`,
      [
        callId,
        status,
        result.exitCode ?? null,
        result.error ?? null,
        finished,
        finished.getTime() - started.getTime(),
        result.outputBytes ?? 0,
        result.truncated ?? false,
      ],
    );
  }
}

interface Route {
  where: string;
  call(
    c: { callId: string; nodeId: string; tool: string; argumentsJson: string; deadline: Date },
  ): Promise<void>;
  cancel(callId: string, nodeId: string, reason: string): void;
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

/** History keeps what was asked, but not stdin, which may be large or private. */
function recordedArguments(args: Record<string, unknown>): Record<string, unknown> {
  if (typeof args.stdin !== "string") return args;
  return { ...args, stdin: `<${new TextEncoder().encode(args.stdin).length} bytes>` };
}
