// Fleet operations: one operation over the hosts a target selects, in waves (sequential,
// rolling=N, parallel) run through a sliding window of that width, with a failure policy (continue, stop-after=N, fail-fast) and a deadline
// per node. Each node's work is an ordinary tool call, so it lands in that host's history too.
// The bookkeeping (operation, per-node results) lives here, on the controller, and is kept.
import { storableText } from "../../../shared/printable.ts";
import { AegisError } from "../../../shared/errors.ts";
import type { Queryable } from "../../store/db.ts";
import type { Clock } from "../clock.ts";
import type { DaemonRecord } from "../daemons.ts";
import { type Operator, requireWriter, resolveTenant, tenantsOf } from "../operators.ts";
import type { CallEvent, CallRequest, ToolCallService } from "../tool_calls.ts";
import { describeTarget, parseTarget, resolveTarget, type Target } from "./target.ts";
import type { ErrorPolicy, FleetMode } from "./policy.ts";
import { slidingWindow } from "./window.ts";
import type { Coalescer } from "./coalesce.ts";
import { fingerprintReader, type ResultRow, resultWriter } from "./results.ts";
import { targetNote, type TargetSource, targetSource } from "./provenance.ts";
import { confirmRotation, type Outcome } from "./confirm.ts";
import { confirmUpgrade, parseUpdateReply } from "./upgrade.ts";
import { EDGE_ROLES, requireRole } from "../identity.ts";
import type { FleetEvent, NodeOutcome } from "../../../shared/fleet_events.ts";

export const OPERATIONS = {
  "keys.rotate": { tool: "node.rotate_key", done: "rotated" },
  "token.refresh": { tool: "node.refresh_token", done: "refreshed" },
  "exec": { tool: "cmd.run", done: "ok" },
  "upgrade": { tool: "node.update", done: "upgraded" },
} as const;
export type OperationName = keyof typeof OPERATIONS;

export interface FleetRequest {
  operation: OperationName;
  target: string;
  mode: FleetMode;
  onError: ErrorPolicy;
  deadlineSecs: number;
  arguments: Record<string, unknown>;
  tenantId?: string;
  /** Cancels the operation: no host starts any more and the running hosts' calls are cancelled. */
  signal?: AbortSignal;
  /** Told the operation's id once it is recorded (its execution names it). */
  onRecorded?: (opId: string) => void;
  /** Wraps each host's call (an execution per host, a child of the operation's). */
  perHost?: (host: DaemonRecord) => Promise<HostScope>;
}

/** One host's part of an operation, as the caller tracks it. */
export interface HostScope {
  /** Aborted when this host's part (or the whole operation) is cancelled. */
  signal: AbortSignal;
  end(outcome: NodeOutcome, detail: string): Promise<void>;
}

/** What a target selects in one tenant, as run() would select it at this moment. */
export interface FleetSelection {
  tenantId: string;
  target: Target;
  /** The canonical spelling, as the operation's record keeps it. */
  description: string;
  source: TargetSource;
  note?: string;
  hosts: DaemonRecord[];
}

/** A fleet_operations row as show() and list() return it. */
export interface FleetOperationRecord {
  op_id: string;
  tenant_id: string;
  operation: string;
  target: string;
  mode: string;
  on_error: string;
  deadline_secs: number;
  requested_by: string;
  relay_id: string | null;
  status: "running" | "done" | "stopped" | "interrupted";
  total: number;
  started_at: Date;
  finished_at: Date | null;
  /** Who asked the operation to start no more hosts, and when (null: nobody). */
  stop_requested_by: string | null;
  stop_requested_at: Date | null;
}

export interface FleetResultRecord {
  node_id: string;
  name: string;
  wave: number;
  status: NodeOutcome;
  detail: string | null;
  exit_code: number | null;
  finished_at: Date;
}

/** A listed operation with how many of its nodes ended each way so far. */
export interface FleetOperationSummary extends FleetOperationRecord {
  counts: Record<NodeOutcome, number>;
}

export const FLEET_LIST_MAX = 200;
/** Fleet operations one tenant may have running at once. */
export const FLEET_RUNNING_PER_TENANT = 20;

export class FleetDispatcher {
  /** Operations start()ed here that are still running, so shutdown and tests can wait for them. */
  readonly #detached = new Set<Promise<void>>();

  constructor(
    private readonly db: Queryable,
    private readonly calls: ToolCallService,
    private readonly relayId: string,
    private readonly clock: Clock,
  ) {}

  async *run(operator: Operator, request: FleetRequest): AsyncGenerator<FleetEvent> {
    requireWriter(operator, `run fleet operation ${request.operation}`);
    requireRole(operator, EDGE_ROLES.fleetManage, `fleet operation ${request.operation}`);
    const { tenantId: tenant, target, hosts } = await this.preview(
      operator,
      request.target,
      request.tenantId,
    );
    if (hosts.length === 0) {
      throw new AegisError("NOT_FOUND", `no hosts match --target ${describeTarget(target)}`);
    }
    await this.#refuseIfBusy(tenant);
    const opId = `op-${crypto.randomUUID().slice(0, 8)}`;
    await this.db.query(
      `INSERT INTO fleet_operations (op_id, tenant_id, operation, target, mode, on_error, deadline_secs,
         requested_by, relay_id, status, total, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'running', $10, $11)`,
      [
        opId,
        tenant,
        request.operation,
        describeTarget(target),
        request.mode.label,
        request.onError.label,
        request.deadlineSecs,
        operator.sub,
        this.relayId,
        hosts.length,
        this.clock(),
      ],
    );
    request.onRecorded?.(opId);
    const source = targetSource(target);
    const note = targetNote(source);
    yield {
      type: "operation",
      op_id: opId,
      operation: request.operation,
      target: describeTarget(target),
      target_source: source,
      ...(note ? { target_note: note } : {}),
      total: hosts.length,
      mode: request.mode.label,
      on_error: request.onError.label,
    };

    const counts: Record<NodeOutcome, number> = {
      ok: 0,
      failed: 0,
      timed_out: 0,
      offline: 0,
      skipped: 0,
    };
    // A wave is the next N hosts, reported when its first host starts; the window stays full
    // (a host starts as soon as any other finishes), so a slow host holds one slot, not a wave.
    const size = Number.isFinite(request.mode.waveSize)
      ? request.mode.waveSize
      : Math.max(1, hosts.length);
    const waveOf = (index: number) => Math.floor(index / size) + 1;
    const writer = resultWriter(this.db, opId);
    const fingerprints = fingerprintReader(this.db);
    let stopReason: string | undefined;
    // A cancelled operation starts no more hosts (the running ones are cancelled by the signal).
    const onCancel = () => stopReason ??= "cancelled";
    if (request.signal?.aborted) onCancel();
    request.signal?.addEventListener("abort", onCancel, { once: true });
    let started = 0;
    const stopRequests = stopRequestReader(this.db, opId, this.clock);
    const window = slidingWindow(
      hosts,
      size,
      async (host, index) =>
        await this.#record(
          writer,
          host,
          waveOf(index),
          await this.#runOne(operator, host, request, fingerprints),
        ),
      () => stopReason !== undefined,
    );
    for await (const event of window) {
      if (event.type === "started") {
        started++;
        if (event.index % size === 0) {
          const wave = waveOf(event.index);
          yield {
            type: "wave",
            wave,
            size: Math.min(size, hosts.length - event.index),
            total: hosts.length,
          };
        }
        continue;
      }
      // Results are reported as they arrive, not in start order.
      counts[event.result.status]++;
      yield event.result;
      const failures = counts.failed + counts.timed_out + counts.offline;
      if (!stopReason && failures >= request.onError.stopAfter) {
        stopReason = `stopped after ${failures} failure(s) (--on-error ${request.onError.label})`;
      }
      if (!stopReason) stopReason = await stopRequests.check();
    }
    // Never started: skipped, untouched, their rows written together.
    const skipped = await Promise.all(
      hosts.slice(started).map((host, i) =>
        this.#record(writer, host, waveOf(started + i), {
          status: "skipped",
          detail: stopReason ?? "",
          exitCode: null,
        })
      ),
    );
    for (const event of skipped) {
      counts.skipped++;
      yield event;
    }
    request.signal?.removeEventListener("abort", onCancel);
    const status = stopReason ? "stopped" : "done";
    await this.db.query(
      `UPDATE fleet_operations SET status = $2, finished_at = $3 WHERE op_id = $1`,
      [
        opId,
        status,
        this.clock(),
      ],
    );
    yield {
      type: "summary",
      op_id: opId,
      status,
      counts,
      ...(stopReason ? { reason: stopReason } : {}),
    };
  }

  /**
   * The hosts a target selects in a tenant, without running anything: the parse and query run()
   * itself uses, so the console's preview lists exactly what Start would run on (as of now).
   * Reading hosts is open to every role; an empty selection is an answer, not an error.
   */
  async preview(operator: Operator, target: string, tenantId?: string): Promise<FleetSelection> {
    const tenant = resolveTenant(operator, tenantId);
    const parsed = parseTarget(target);
    const hosts = await resolveTarget(this.db, [tenant], parsed);
    const source = targetSource(parsed);
    const note = targetNote(source);
    return {
      tenantId: tenant,
      target: parsed,
      description: describeTarget(parsed),
      source,
      ...(note ? { note } : {}),
      hosts,
    };
  }

  /**
   * Runs an operation to its end whoever watches: resolves with its first event once the target
   * resolved and the operation is recorded (a refusal before that rejects), and the rest runs
   * here, detached from the caller. For the console, whose browser may navigate away at once.
   * A failure part-way is logged and the operation marked interrupted rather than left running.
   */
  async start(
    operator: Operator,
    request: FleetRequest,
    log: (message: string) => void,
    /** The operation's events when a caller wraps run() (EdgeActions: as an execution). */
    events: AsyncGenerator<FleetEvent> = this.run(operator, request),
  ): Promise<Extract<FleetEvent, { type: "operation" }>> {
    const first = await events.next();
    if (first.done || first.value.type !== "operation") {
      throw new AegisError("INTERNAL", "a fleet operation began without its operation event");
    }
    const opId = first.value.op_id;
    const rest = (async () => {
      try {
        for (let next = await events.next(); !next.done; next = await events.next()) {
          // Progress is kept in fleet_results as it happens; nobody reads the events here.
        }
      } catch (error) {
        log(`fleet operation ${opId} failed part-way: ${(error as Error)?.stack ?? error}`);
        await this.db.query(
          `UPDATE fleet_operations SET status = 'interrupted', finished_at = $2
            WHERE op_id = $1 AND status = 'running'`,
          [opId, this.clock()],
        ).catch((e) => log(`fleet operation ${opId} could not be marked interrupted: ${e}`));
      }
    })();
    this.#detached.add(rest);
    rest.finally(() => this.#detached.delete(rest));
    return first.value;
  }

  /**
   * A tenant runs at most FLEET_RUNNING_PER_TENANT operations at once (operations detached from
   * their caller would otherwise pile up without bound). Counted over the last day, so rows a
   * relay that died for good left 'running' stop counting.
   */
  async #refuseIfBusy(tenant: string): Promise<void> {
    const [{ n }] = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fleet_operations
        WHERE tenant_id = $1 AND status = 'running' AND started_at > $2`,
      [tenant, new Date(this.clock().getTime() - 86_400_000)],
    );
    if (n >= FLEET_RUNNING_PER_TENANT) {
      throw new AegisError(
        "RATE_LIMITED",
        `tenant "${tenant}" already has ${n} fleet operations running`,
        { hint: "Wait for one to end, then start this one." },
      );
    }
  }

  /** Resolves once every operation start()ed so far has ended. */
  async idle(): Promise<void> {
    while (this.#detached.size > 0) await Promise.all([...this.#detached]);
  }

  /**
   * The operations of the operator's tenants (or of one of them), newest first, `limit` of them
   * after skipping `offset`, with per-outcome counts of the nodes that have ended so far.
   */
  async list(
    operator: Operator,
    options: { tenantId?: string; limit?: number; offset?: number } = {},
  ): Promise<FleetOperationSummary[]> {
    const tenants = options.tenantId
      ? [resolveTenant(operator, options.tenantId)]
      : tenantsOf(operator);
    const limit = Math.max(1, Math.min(FLEET_LIST_MAX, Math.trunc(options.limit ?? 50)));
    const offset = Math.max(0, Math.trunc(options.offset ?? 0));
    // The page is cut first, so counting results costs one index range per listed operation.
    const rows = await this.db.query<
      FleetOperationRecord & Record<NodeOutcome, number>
    >(
      `WITH page AS (
         SELECT * FROM fleet_operations WHERE tenant_id = ANY($1::text[])
          ORDER BY started_at DESC, op_id DESC LIMIT $2 OFFSET $3)
       SELECT page.*, c.ok, c.failed, c.timed_out, c.offline, c.skipped
         FROM page CROSS JOIN LATERAL (
           SELECT count(*) FILTER (WHERE r.status = 'ok')::int AS ok,
                  count(*) FILTER (WHERE r.status = 'failed')::int AS failed,
                  count(*) FILTER (WHERE r.status = 'timed_out')::int AS timed_out,
                  count(*) FILTER (WHERE r.status = 'offline')::int AS offline,
                  count(*) FILTER (WHERE r.status = 'skipped')::int AS skipped
             FROM fleet_results r WHERE r.op_id = page.op_id) c
        ORDER BY page.started_at DESC, page.op_id DESC`,
      [tenants, limit, offset],
    );
    return rows.map(({ ok, failed, timed_out, offline, skipped, ...op }) => ({
      ...op,
      counts: { ok, failed, timed_out, offline, skipped },
    }));
  }

  async show(
    operator: Operator,
    opId: string,
  ): Promise<FleetOperationRecord & { results: FleetResultRecord[] }> {
    const ops = await this.db.query<FleetOperationRecord>(
      `SELECT * FROM fleet_operations WHERE op_id = $1`,
      [opId],
    );
    const op = ops[0];
    if (!op || ![operator.tenant_id, ...operator.tenants].includes(op.tenant_id)) {
      throw new AegisError("NOT_FOUND", `no fleet operation ${opId}`);
    }
    const results = await this.db.query<FleetResultRecord>(
      `SELECT node_id, name, wave, status, detail, exit_code, finished_at FROM fleet_results
        WHERE op_id = $1 ORDER BY wave, finished_at`,
      [opId],
    );
    return { ...op, results };
  }

  /**
   * What changes while an operation runs, in one aggregate over its results (an index range),
   * not its rows: a page watching a 15,000-node operation asks this every 2 s and reads the
   * whole operation only when the answer moved.
   */
  async progress(operator: Operator, opId: string): Promise<string> {
    const rows = await this.db.query<
      {
        tenant_id: string;
        status: string;
        finished_at: Date | null;
        stop_requested_at: Date | null;
        n: number;
        last: Date | null;
      }
    >(
      `SELECT o.tenant_id, o.status, o.finished_at, o.stop_requested_at,
              (SELECT count(*)::int FROM fleet_results r WHERE r.op_id = o.op_id) AS n,
              (SELECT max(r.finished_at) FROM fleet_results r WHERE r.op_id = o.op_id) AS last
         FROM fleet_operations o WHERE o.op_id = $1`,
      [opId],
    );
    const row = rows[0];
    if (!row || !tenantsOf(operator).includes(row.tenant_id)) {
      throw new AegisError("NOT_FOUND", `no fleet operation ${opId}`);
    }
    return JSON.stringify([row.status, row.finished_at, row.stop_requested_at, row.n, row.last]);
  }

  /**
   * Asks a running operation to start no more hosts: the relay running it sees the request with
   * its next result (at most a second later) and reports the rest skipped, "stopped by WHO";
   * hosts already running finish. Refused for an operation that already ended.
   */
  async stop(operator: Operator, opId: string): Promise<void> {
    requireWriter(operator, "stop fleet operations");
    const rows = await this.db.query<{ status: string; stop_requested_at: Date | null }>(
      `SELECT status, stop_requested_at FROM fleet_operations
        WHERE op_id = $1 AND tenant_id = ANY($2::text[])`,
      [opId, tenantsOf(operator)],
    );
    if (rows.length === 0) throw new AegisError("NOT_FOUND", `no fleet operation ${opId}`);
    if (rows[0].status !== "running") {
      throw new AegisError(
        "CONFLICT",
        `fleet operation ${opId} is not running (it is ${rows[0].status})`,
      );
    }
    await this.db.query(
      `UPDATE fleet_operations SET stop_requested_by = $2, stop_requested_at = $3
        WHERE op_id = $1 AND status = 'running' AND stop_requested_at IS NULL`,
      [opId, operator.sub, this.clock()],
    );
  }

  /** At start-up: operations this process was driving when it stopped did not finish. */
  async interruptOrphans(): Promise<void> {
    await this.db.query(
      `UPDATE fleet_operations SET status = 'interrupted', finished_at = $2 WHERE relay_id = $1 AND status = 'running'`,
      [this.relayId, this.clock()],
    );
  }

  async #runOne(
    operator: Operator,
    host: DaemonRecord,
    request: FleetRequest,
    fingerprints: Coalescer<string, string | undefined>,
  ): Promise<Outcome> {
    if (request.operation === "upgrade") {
      // Confirmed by the version the host reconnects with, not by its answer (upgrade.ts).
      let resultJson = "";
      const reported = await this.#call(operator, host, request, (json) => resultJson = json);
      const reply = parseUpdateReply(resultJson);
      const asked = request.arguments.connect_deadline_secs;
      return await confirmUpgrade(
        this.db,
        host.node_id,
        reported,
        reply,
        this.clock(),
        typeof asked === "number" ? asked : undefined,
      );
    }
    if (request.operation !== "keys.rotate") return await this.#call(operator, host, request);
    // The record as the target read it (at the operation's start) and after the call: the
    // rotation happened only if the controller's record changed during the operation.
    const reported = await this.#call(operator, host, request);
    return confirmRotation(reported, host.key_fingerprint, await fingerprints.submit(host.node_id));
  }

  async #call(
    operator: Operator,
    host: DaemonRecord,
    request: FleetRequest,
    onResult?: (resultJson: string) => void,
  ): Promise<Outcome> {
    const spec = OPERATIONS[request.operation];
    const call: CallRequest = {
      tool: spec.tool,
      arguments: request.arguments,
      timeoutSecs: request.deadlineSecs,
    };
    const scope = await request.perHost?.(host);
    const outcome = await this.#callOnce(operator, host, call, request, scope, onResult);
    await scope?.end(outcome.status, outcome.detail);
    return outcome;
  }

  async #callOnce(
    operator: Operator,
    host: DaemonRecord,
    call: CallRequest,
    request: FleetRequest,
    scope: HostScope | undefined,
    onResult?: (resultJson: string) => void,
  ): Promise<Outcome> {
    const spec = OPERATIONS[request.operation];
    const signal = scope?.signal ?? request.signal;
    let last: CallEvent | undefined;
    try {
      for await (const event of this.calls.execute(operator, host.node_id, call, signal)) {
        last = event;
      }
    } catch (error) {
      const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
      const status: NodeOutcome = aegis.code === "NODE_OFFLINE"
        ? "offline"
        : aegis.code === "TIMED_OUT"
        ? "timed_out"
        : "failed";
      return { status, detail: aegis.message, exitCode: null };
    }
    if (last?.type === "exit") {
      onResult?.(last.result_json);
      if (last.timed_out) {
        return {
          status: "timed_out" as const,
          detail: `deadline ${request.deadlineSecs}s passed`,
          exitCode: last.exit_code,
        };
      }
      return last.exit_code === 0
        ? { status: "ok" as const, detail: spec.done, exitCode: 0 }
        : { status: "failed" as const, detail: `exit ${last.exit_code}`, exitCode: last.exit_code };
    }
    if (last?.type === "refused") {
      return { status: "failed" as const, detail: last.message, exitCode: null };
    }
    return {
      status: "failed" as const,
      detail: "the host ended the call without a result",
      exitCode: null,
    };
  }

  async #record(
    writer: Coalescer<ResultRow, void>,
    host: DaemonRecord,
    wave: number,
    outcome: Outcome,
  ): Promise<Extract<FleetEvent, { type: "result" }>> {
    const { status, exitCode } = outcome;
    // A host's own words (its refusal message) are stored and shown: repaired and bounded first.
    const detail = storableText(outcome.detail, 1_000);
    await writer.submit({
      node_id: host.node_id,
      name: host.name,
      wave,
      status,
      detail,
      exit_code: exitCode,
      finished_at: this.clock(),
    });
    return {
      type: "result",
      node_id: host.node_id,
      name: host.name,
      wave,
      status,
      detail,
      exit_code: exitCode,
    };
  }
}

/**
 * Whether someone asked this operation to stop, read at most once a second however fast results
 * arrive (a 15,000-host operation must not cost a query per result).
 */
function stopRequestReader(db: Queryable, opId: string, clock: Clock) {
  let lastRead = -Infinity;
  return {
    async check(): Promise<string | undefined> {
      const now = clock().getTime();
      if (now - lastRead < 1000) return undefined;
      lastRead = now;
      const rows = await db.query<{ stop_requested_by: string | null }>(
        `SELECT stop_requested_by FROM fleet_operations WHERE op_id = $1`,
        [opId],
      );
      const by = rows[0]?.stop_requested_by;
      return by ? `stopped by ${by}` : undefined;
    },
  };
}
