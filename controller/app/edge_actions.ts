// The edge operations as callers start them, whatever the transport (REST, the console, MCP):
// each runs inside an execution (executions.ts: the security context, the ceiling rule, limits,
// cascade cancellation) and ends with a record in the tenant's audit log. Transports only
// translate their protocol to these calls.
import type { AuditLog } from "./audit.ts";
import type { FleetEvent, NodeOutcome } from "../../shared/fleet_events.ts";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import type { CallEvent, CallRequest, ToolCallService } from "./tool_calls.ts";
import type { FleetDispatcher, FleetRequest, OperationName } from "./fleet/dispatcher.ts";
import type { EnrollmentService, IssuedEnrollmentToken } from "./enrollment.ts";
import type { RevocationService } from "./revocation.ts";
import type { DaemonRepository } from "./daemons.ts";
import type { EdgeToolName } from "./edge_tools.ts";
import type { ExecutionHandle, ExecutionKind, ExecutionService } from "./executions.ts";
import { actorOf, type Principal, requireOperatorKind } from "./identity.ts";
import { requireWriter, tenantsOf } from "./operators.ts";
import type { SecurityContexts } from "./security_contexts.ts";

/** Where new work goes in the execution tree: under an execution, or in a conversation. */
export interface ExecutionScope {
  parentId?: string;
  sessionId?: string;
  /** A narrower security context than the parent's. */
  context?: string;
}

/** What actions need of the audit log (AuditLog, controller/app/audit.ts). */
export type AuditRecorder = Pick<AuditLog, "record">;

interface OpenArgs {
  kind: ExecutionKind;
  title: string;
  tool: EdgeToolName;
  timeoutSecs?: number;
  tenantId?: string;
  ref?: string;
}

/** The MCP tool each fleet operation is, for the security context's check. */
export const FLEET_TOOLS: Record<OperationName, EdgeToolName> = {
  "exec": "aegis.edge.fleet.exec",
  "keys.rotate": "aegis.edge.fleet.rotate_keys",
  "token.refresh": "aegis.edge.fleet.refresh_tokens",
  "upgrade": "aegis.edge.fleet.upgrade",
};

export interface EdgeActionsDeps {
  calls: ToolCallService;
  fleet: FleetDispatcher;
  enrollment: EnrollmentService;
  revocation: RevocationService;
  daemons: DaemonRepository;
  executions: ExecutionService;
  audit?: AuditRecorder;
  /** The caller's own context, for how long its refusals are kept (absent: 365 days). */
  contexts?: SecurityContexts;
  log: (message: string) => void;
}

/** Refusals of one caller for one reason are recorded once per window, with a count. */
const REFUSAL_WINDOW_MS = 60_000;
/** Distinct (caller, action, reason) keys tracked at once; past it, each refusal is recorded. */
const MAX_REFUSAL_KEYS = 10_000;

/**
 * Coalesces repeats: the first occurrence of a key is reported at once; later ones within the
 * window are counted, and reported together by the first occurrence after the window (or by
 * flush() at shutdown). No timers: nothing runs for a key nobody repeats. Bounded in keys.
 */
class RepeatCounter {
  readonly #windows = new Map<
    string,
    { opened: number; count: number; report: (count: number) => void }
  >();

  constructor(private readonly windowMs: number, private readonly maxKeys: number) {}

  add(key: string, report: (count: number) => void, now = Date.now()): void {
    const open = this.#windows.get(key);
    if (open && now - open.opened < this.windowMs) {
      open.count++;
      open.report = report;
      return;
    }
    if (open) {
      this.#windows.delete(key);
      if (open.count > 0) open.report(open.count);
    }
    report(1);
    if (this.#windows.size >= this.maxKeys) this.#closeExpired(now);
    if (this.#windows.size < this.maxKeys) {
      this.#windows.set(key, { opened: now, count: 0, report });
    }
  }

  /** Reports every count not reported yet. */
  flush(): void {
    for (const window of this.#windows.values()) if (window.count > 0) window.report(window.count);
    this.#windows.clear();
  }

  #closeExpired(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.opened < this.windowMs) continue;
      this.#windows.delete(key);
      if (window.count > 0) window.report(window.count);
    }
  }
}

export class EdgeActions {
  readonly #refusals = new RepeatCounter(REFUSAL_WINDOW_MS, MAX_REFUSAL_KEYS);

  constructor(private readonly deps: EdgeActionsDeps) {}

  /** Resolves once every operation startFleet() began has ended. */
  async idle(): Promise<void> {
    await this.deps.fleet.idle();
  }

  /** At shutdown: repeated refusals counted but not yet recorded are recorded. */
  flushRefusals(): void {
    this.#refusals.flush();
  }

  /**
   * Runs a tool on a host as an execution: the caller's abort (a closed response, an MCP
   * cancellation) and the execution's (a cancelled ancestor) both cancel the remote call.
   */
  async *runTool(
    principal: Principal,
    nodeId: string,
    request: CallRequest,
    scope: ExecutionScope & { tool: EdgeToolName; signal?: AbortSignal },
  ): AsyncGenerator<CallEvent> {
    // The execution's row is committed while the call travels; the caller hears of the call
    // only once it is (so a cancel through any relay finds it).
    const { handle: execution, recorded } = await this.#openConcurrently(principal, scope, {
      kind: "command",
      title: `${request.tool} on ${nodeId}`,
      tool: scope.tool,
      timeoutSecs: request.timeoutSecs,
      ref: nodeId,
    });
    let told = false;
    const signal = scope.signal
      ? AbortSignal.any([scope.signal, execution.signal])
      : execution.signal;
    let status: "succeeded" | "failed" | "cancelled" = "failed";
    let detail = "";
    try {
      for await (const event of this.deps.calls.execute(principal, nodeId, request, signal)) {
        if (!told) {
          await recorded;
          told = true;
        }
        if (event.type === "started") execution.setRef(event.call_id);
        if (event.type === "exit") {
          status = event.exit_code === 0 && !event.timed_out ? "succeeded" : "failed";
          detail = event.timed_out ? "timed out" : `exit ${event.exit_code}`;
        } else if (event.type === "refused") {
          detail = `refused: ${event.code}`;
        }
        yield event;
      }
    } catch (error) {
      const aegis = toAegisError(error);
      status = execution.signal.aborted || aegis.code === "ABORTED" ? "cancelled" : "failed";
      detail = `${aegis.code}: ${aegis.message}`;
      throw error;
    } finally {
      if (execution.signal.aborted) status = "cancelled";
      // Written with the next group commit; the caller's answer does not wait for it.
      execution.end(status, detail).catch((e) => this.deps.log(`execution end lost: ${e}`));
      this.#audit(principal, execution, "tool.call", `${nodeId} ${request.tool}`, status, {
        node_id: nodeId,
        tool: request.tool,
        ...(detail ? { result: detail } : {}),
      });
    }
  }

  /**
   * A fleet operation as an execution, each host a child of it. Cancelling the operation's
   * execution (or an ancestor) starts no more hosts and cancels the running hosts' calls.
   */
  async *fleet(
    principal: Principal,
    request: FleetRequest,
    scope: ExecutionScope = {},
  ): AsyncGenerator<FleetEvent> {
    requireOperatorKind(principal);
    const execution = await this.#open(principal, scope, {
      kind: "fleet",
      title: `fleet ${request.operation} --target ${request.target}`.slice(0, 200),
      tool: FLEET_TOOLS[request.operation],
      timeoutSecs: request.deadlineSecs,
      tenantId: request.tenantId,
    });
    const signal = request.signal
      ? AbortSignal.any([request.signal, execution.signal])
      : execution.signal;
    let opId = "";
    let summary: Extract<FleetEvent, { type: "summary" }> | undefined;
    let failure: string | undefined;
    try {
      const events = this.deps.fleet.run(principal, {
        ...request,
        signal,
        onRecorded: (id) => {
          opId = id;
          execution.setRef(id);
        },
        perHost: (host) => this.#hostScope(execution, host.node_id, host.name, request),
      });
      for await (const event of events) {
        if (event.type === "summary") summary = event;
        yield event;
      }
    } catch (error) {
      failure = `${toAegisError(error).code}: ${toAegisError(error).message}`;
      throw error;
    } finally {
      const status = execution.signal.aborted
        ? "cancelled"
        : summary && summary.status === "done" &&
            summary.counts.failed + summary.counts.timed_out + summary.counts.offline === 0
        ? "succeeded"
        : "failed";
      const detail = failure ??
        (summary ? `${summary.status}${summary.reason ? `: ${summary.reason}` : ""}` : "ended");
      // Recorded first: a failing write of the execution's end must not cost the audit record.
      execution.end(status, detail).catch((e) => this.deps.log(`execution end lost: ${e}`));
      this.#audit(principal, execution, "fleet.operation", request.target, status, {
        operation: request.operation,
        ...(opId ? { op_id: opId } : {}),
        ...(summary ? { counts: summary.counts } : {}),
        ...(failure ? { error: failure } : {}),
      });
    }
  }

  /**
   * A fleet operation that runs to its end whoever watches (the console): resolves with its
   * first event once recorded, the rest runs detached (FleetDispatcher.start's contract).
   */
  async startFleet(
    principal: Principal,
    request: FleetRequest,
    scope: ExecutionScope = {},
  ): Promise<Extract<FleetEvent, { type: "operation" }>> {
    // The dispatcher runs it detached (and marks it interrupted should it fail part-way).
    return await this.deps.fleet.start(
      principal,
      request,
      this.deps.log,
      this.fleet(principal, request, scope),
    );
  }

  async issueEnrollmentToken(
    principal: Principal,
    request: { name?: string; tenant_id?: string; ttl_secs?: number; hostname_pattern?: string },
    scope: ExecutionScope = {},
  ): Promise<IssuedEnrollmentToken> {
    const execution = await this.#open(principal, scope, {
      kind: "action",
      title: `enrollment token${request.name ? ` for ${request.name}` : ""}`.slice(0, 200),
      tool: "aegis.edge.enrollment_token.issue",
      tenantId: request.tenant_id,
    });
    let issued: IssuedEnrollmentToken | undefined;
    let failure: AegisError | undefined;
    try {
      issued = await this.deps.enrollment.issueToken(principal, request);
      execution.setRef(issued.jti);
      return issued;
    } catch (error) {
      failure = toAegisError(error);
      throw error;
    } finally {
      // Whatever happens to the execution's own record, the audit log says what was issued.
      this.#audit(
        principal,
        execution,
        "enrollment_token.issue",
        issued?.jti ?? "",
        issued ? "ok" : "failed",
        issued
          ? {
            name: issued.name,
            expires_at: issued.expires_at,
            ...(issued.hostname_pattern ? { hostname_pattern: issued.hostname_pattern } : {}),
          }
          : { error: failure?.code },
      );
      execution.end(issued ? "succeeded" : "failed", failure?.message)
        .catch((e) => this.deps.log(`execution end lost: ${e}`));
    }
  }

  async revokeHost(
    principal: Principal,
    nodeId: string,
    scope: ExecutionScope = {},
  ): Promise<{ node_id: string; revoked: boolean }> {
    requireWriter(principal, "revoke hosts");
    const host = await this.deps.daemons.require(nodeId, tenantsOf(principal));
    const execution = await this.#open(principal, scope, {
      kind: "action",
      title: `revoke ${host.node_id}`,
      tool: "aegis.edge.hosts.revoke",
      tenantId: host.tenant_id,
      ref: host.node_id,
    });
    let revoked: boolean | undefined;
    let failure: AegisError | undefined;
    try {
      revoked = await this.deps.revocation.revoke(host.node_id, `revoked by ${principal.sub}`);
      return { node_id: host.node_id, revoked };
    } catch (error) {
      failure = toAegisError(error);
      throw error;
    } finally {
      this.#audit(
        principal,
        execution,
        "node.revoke",
        host.node_id,
        revoked === undefined ? "failed" : revoked ? "ok" : "unchanged",
        failure ? { error: failure.code } : undefined,
      );
      execution.end(
        failure ? "failed" : "succeeded",
        failure?.message ?? (revoked ? "revoked" : "was already revoked"),
      ).catch((e) => this.deps.log(`execution end lost: ${e}`));
    }
  }

  /**
   * Records an action refused before it became an execution (a limit, a context, a role). A
   * caller refused again and again for the same reason (a script hammering past its quota) gets
   * one record a minute carrying how many times, not one record a refusal; the record is kept as
   * long as the caller's own context keeps its records.
   */
  refused(principal: Principal, action: string, target: string, error: unknown): void {
    const aegis = toAegisError(error);
    const record = (count: number) =>
      void this.deps.audit?.record({
        tenantId: principal.tenant_id,
        actor: actorOf(principal),
        action,
        target,
        outcome: "refused",
        detail: {
          code: aegis.code,
          message: aegis.message.slice(0, 300),
          ...(count > 1 ? { times: count } : {}),
        },
        retentionDays: this.#retentionOf(principal),
      }).catch((e) => this.deps.log(`audit record lost: ${e}`));
    this.#refusals.add(
      JSON.stringify([principal.tenant_id, principal.iss, principal.sub, action, aegis.code]),
      record,
    );
  }

  /** #open() for a call: its row is committed while the call starts (openConcurrently). */
  #openConcurrently(principal: Principal, scope: ExecutionScope, spec: OpenArgs) {
    return this.#auditRefusal(
      principal,
      spec,
      () => this.deps.executions.openConcurrently(principal, { ...scope, ...spec }),
    );
  }

  /** Opens the execution an action runs as; a refusal is recorded in the audit log. */
  #open(principal: Principal, scope: ExecutionScope, spec: OpenArgs) {
    return this.#auditRefusal(
      principal,
      spec,
      () => this.deps.executions.open(principal, { ...scope, ...spec }),
    );
  }

  async #auditRefusal<T>(principal: Principal, spec: OpenArgs, open: () => Promise<T>): Promise<T> {
    try {
      return await open();
    } catch (error) {
      this.refused(principal, spec.tool, spec.title, error);
      throw error;
    }
  }

  async #hostScope(
    operation: ExecutionHandle,
    nodeId: string,
    name: string,
    request: FleetRequest,
  ) {
    const child = await this.deps.executions.openChild(operation, {
      kind: "node_call",
      title: `${request.operation} on ${name || nodeId}`,
      ref: nodeId,
      timeoutSecs: request.deadlineSecs,
    });
    return {
      signal: child.signal,
      end: async (outcome: NodeOutcome, detail: string) => {
        await child.end(
          child.signal.aborted ? "cancelled" : outcome === "ok" ? "succeeded" : "failed",
          detail,
        );
      },
    };
  }

  #retentionOf(principal: Principal): number {
    try {
      return this.deps.contexts?.resolve(principal).audit_retention_days ?? 365;
    } catch {
      return 365;
    }
  }

  #audit(
    principal: Principal,
    execution: ExecutionHandle,
    action: string,
    target: string,
    outcome: string,
    detail?: Record<string, unknown>,
  ): void {
    void this.deps.audit?.record({
      tenantId: execution.record.tenant_id,
      actor: actorOf(principal),
      action,
      target: target.slice(0, 200),
      outcome,
      ...(detail ? { detail } : {}),
      executionId: execution.record.id,
      retentionDays: execution.context.audit_retention_days,
    }).catch((e) => this.deps.log(`audit record lost: ${e}`));
  }
}
