// The daemon's tool runtime: admits calls (duplicates, concurrency), runs them, and guarantees
// each call ends with exactly one final event, exit or refused, whatever goes wrong in between.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import {
  type ToolCall,
  type ToolExit,
  ToolExitSchema,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { planCmd } from "./cmd_plan.ts";
import { runCmd } from "./cmd_run.ts";
import { runEcho } from "./echo.ts";
import { refusedEvent, ToolRefusal, toRefusal } from "./refusal.ts";
import { sandboxStatus } from "./sandbox.ts";
import type { Emit, ToolCallRequest, ToolContext, ToolEventBody } from "./types.ts";

interface Running {
  abort: AbortController;
  done: Promise<void>;
}

export class ToolRunner {
  readonly #calls = new Map<string, Running>();
  #closing = false;

  constructor(private readonly ctx: ToolContext, private readonly emit: Emit) {
    // Said once at start, so the daemon log tells whether calls can read the state directory.
    if (ctx.config.edge.sandbox === "off") {
      this.#log("sandbox: off (edge.sandbox); tool calls can read the state directory");
    } else {
      void sandboxStatus().then((s) =>
        this.#log(
          s.available
            ? `sandbox: ${s.detail}`
            : `sandbox: unavailable (${s.detail}); ${
              this.ctx.config.edge.sandbox === "required"
                ? "edge.sandbox is required, so every cmd.run is refused"
                : "tool calls run unsandboxed and can read the state directory"
            }`,
        )
      );
    }
  }

  /** Starts the call; returns at once. Refusals are emitted as a `refused` event. */
  start(call: ToolCallRequest): void {
    const refusal = this.#admit(call.callId);
    if (refusal) {
      // Deferred like every other event, so no emit ever runs inside the caller's start().
      queueMicrotask(() => this.#end(call.callId, refusedEvent(refusal)));
      return;
    }
    const abort = new AbortController();
    const done = Promise.resolve()
      .then(() => this.#execute(call, abort.signal))
      .then(
        (exit): ToolEventBody => ({ case: "exit", value: exit }),
        (error) => refusedEvent(toRefusal(error)),
      )
      .then((event) => {
        // Free the slot first: a controller that answers the exit with a new call must not
        // find this one still counted.
        this.#calls.delete(call.callId);
        this.#end(call.callId, event);
      });
    this.#calls.set(call.callId, { abort, done });
  }

  /** Kills the call's process tree; its final event is then an exit with the signal set. */
  cancel(callId: string, reason: string): void {
    const call = this.#calls.get(callId);
    if (!call) return this.#log(`cancel for unknown call ${callId} ignored`);
    this.#log(`call ${callId}: cancelling (${reason})`);
    call.abort.abort(reason);
  }

  get running(): number {
    return this.#calls.size;
  }

  /** Ids of the calls running now (reported on heartbeats). */
  get callIds(): string[] {
    return [...this.#calls.keys()];
  }

  /** Cancels everything (daemon shutdown) and resolves when all have ended. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    for (const [callId] of this.#calls) this.cancel(callId, "daemon shutting down");
    await Promise.all([...this.#calls.values()].map((call) => call.done));
  }

  #admit(callId: string): ToolRefusal | undefined {
    if (this.#closing) return new ToolRefusal("SHUTTING_DOWN", "the daemon is shutting down");
    if (this.#calls.has(callId)) {
      return new ToolRefusal("DUPLICATE_CALL", `call ${callId} is already running`);
    }
    const max = this.ctx.config.edge.max_concurrent_calls;
    if (this.#calls.size >= max) {
      // Refuse rather than queue: a queued call would wait behind calls of unknown length.
      const message =
        `${this.#calls.size} calls already running (edge.max_concurrent_calls = ${max})`;
      return new ToolRefusal("BUSY", message);
    }
  }

  async #execute(call: ToolCallRequest, signal: AbortSignal): Promise<ToolExit> {
    if (call.tool === "echo") return runEcho(this.ctx.config, call.argumentsJson);
    if (call.tool !== "cmd.run") {
      throw new ToolRefusal("UNKNOWN_TOOL", `this host has no tool "${call.tool}"`);
    }
    const plan = await planCmd(this.ctx, call.argumentsJson, call.deadline);
    // Cancelled while planning: nothing to kill, but the caller was promised "cancel ends in an
    // exit with the signal set", whatever moment the cancel happened to land in.
    if (signal.aborted) return cancelledExit();
    const output = (event: ToolEventBody) => this.#send(call.callId, event);
    const onSpawn = (pid: number) => this.#log(`call ${call.callId}: ${plan.label} pid ${pid}`);
    return await runCmd(plan, output, signal, onSpawn);
  }

  #end(callId: string, event: ToolEventBody): void {
    if (event.case === "refused") {
      this.#log(`call ${callId}: refused ${event.value.code}: ${event.value.message}`);
    } else if (event.case === "exit") {
      const { exitCode, signal, timedOut } = event.value;
      const how = signal ? `${signal}${timedOut ? " (timed out)" : ""}` : `code ${exitCode}`;
      this.#log(`call ${callId}: exited ${how} after ${event.value.durationMs} ms`);
    }
    this.#send(callId, event);
  }

  #log(message: string): void {
    try {
      this.ctx.log(message);
    } catch {
      // Logging must never be the reason a call loses its final event.
    }
  }

  #send(callId: string, event: ToolEventBody): void {
    try {
      this.emit(callId, event);
    } catch (error) {
      // A broken transport must not wedge the call's bookkeeping; the stream layer owns retries.
      this.#log(
        `call ${callId}: event ${event.case} not delivered: ${(error as Error).message}`,
      );
    }
  }
}

function cancelledExit(): ToolExit {
  return create(ToolExitSchema, { exitCode: 128 + 15, signal: "SIGTERM" });
}

/** The runner's view of a call off the wire. */
export function toolCallRequest(call: ToolCall): ToolCallRequest {
  const { callId, tool, argumentsJson, deadline } = call;
  return { callId, tool, argumentsJson, deadline: deadline ? timestampDate(deadline) : undefined };
}
