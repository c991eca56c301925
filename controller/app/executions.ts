// Executions: every unit of work a caller starts, kept as a tree. A conversation (an MCP session,
// a client's session id) has at most one running top-level task; tool calls and fleet operations
// run as children of the execution they name or of their conversation's task (or alone, as a
// root); each host a fleet operation touches is a child of that operation. Opening one is where
// the security context is enforced for every transport: the ceiling rule (never broader than the
// parent's context), the tool it runs, its timeout, and the context's executions per minute and
// per day and concurrency. Cancelling an execution cancels every running descendant, on this
// relay through its abort signal and on the others through the relay bus, which in turn cancels
// the remote calls (and so kills the hosts' process trees).
import { storableText } from "../../shared/printable.ts";
import { createHash } from "node:crypto";
import { AegisError } from "../../shared/errors.ts";
import type { Db, Queryable } from "../store/db.ts";
import { BatchWriter } from "./batch_writer.ts";
import type { Clock } from "./clock.ts";
import { EDGE_TOOLS, type EdgeToolName } from "./edge_tools.ts";
import { type Actor, actorOf, asPrincipal, type Principal } from "./identity.ts";
import { tenantsOf } from "./operators.ts";
import { requireWithin, type ResolvedContext, type SecurityContexts } from "./security_contexts.ts";
import type { OperatorClaims } from "../../shared/tokens/claims.ts";

export const EXECUTION_KINDS = ["task", "command", "fleet", "node_call", "action"] as const;
export type ExecutionKind = typeof EXECUTION_KINDS[number];
export type ExecutionStatus = "running" | "succeeded" | "failed" | "cancelled";

/** A session id as a client sends it: printable, short. */
export const SESSION_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
const EXECUTION_ID_PATTERN = /^ex-[0-9a-f-]{36}$/;
/** Running tasks one identity may hold (tasks do not count against concurrency). */
export const MAX_RUNNING_TASKS = 64;
/** The most executions one tree view returns. */
export const MAX_TREE_NODES = 2_000;
export const MAX_LIST = 200;
/** How long an ended execution tree stays listed (longer than the day the rate limits count). */
export const EXECUTION_RETENTION_DAYS = 30;
const TITLE_MAX = 200;
const DETAIL_MAX = 500;
const REF_MAX = 128;

export interface ExecutionRecord {
  id: string;
  root_id: string;
  parent_id: string | null;
  tenant_id: string;
  kind: ExecutionKind;
  title: string;
  context: string;
  identity_kind: string;
  issuer: string;
  subject: string;
  status: ExecutionStatus;
  detail: string | null;
  ref: string | null;
  relay_id: string;
  deadline_at: Date | null;
  created_at: Date;
  ended_at: Date | null;
  cancel_requested_by: string | null;
}

export interface ExecutionNode extends ExecutionRecord {
  children: ExecutionNode[];
}

export interface OpenSpec {
  kind: ExecutionKind;
  title: string;
  /** The tool this execution runs, checked against its context. */
  tool?: EdgeToolName;
  /** Run under this execution (it must be the caller's own and running). */
  parentId?: string;
  /** The conversation: a task is its one root, other work joins its running task. */
  sessionId?: string;
  /** A narrower context than the parent's (or the caller's own, for a root). */
  context?: string;
  /** The timeout the work asks for; refused above the context's maximum. */
  timeoutSecs?: number;
  ref?: string;
  /** The tenant the work acts on (defaults to the parent's, or the caller's own). */
  tenantId?: string;
}

/** A running execution as its runner holds it. */
export interface ExecutionHandle {
  readonly record: ExecutionRecord;
  readonly context: ResolvedContext;
  /** Aborted when the execution (or any ancestor) is cancelled or passes its deadline. */
  readonly signal: AbortSignal;
  /** Names what it stands for once known (a fleet operation's id). */
  setRef(ref: string): void;
  /** Records how it ended; a cancelled execution stays cancelled. */
  end(status: Exclude<ExecutionStatus, "running">, detail?: string): Promise<void>;
}

interface Live {
  abort: AbortController;
  /** A task has no runner to end it: its entry goes when it is cancelled or finished. */
  task: boolean;
}

type Write =
  | { op: "insert"; record: ExecutionRecord; counted: boolean; sessionKey: string | null }
  | { op: "end"; id: string; status: ExecutionStatus; detail: string | null; at: Date }
  | { op: "ref"; id: string; ref: string };

export interface CancelNotifier {
  /** Tells the other relays to abort these executions' work. */
  cancelElsewhere(ids: string[]): Promise<void>;
}

export class ExecutionService {
  readonly #live = new Map<string, Live>();
  readonly #writes: BatchWriter<Write>;
  #notifier?: CancelNotifier;

  constructor(
    private readonly db: Db,
    private readonly contexts: SecurityContexts,
    private readonly relayId: string,
    private readonly clock: Clock,
    private readonly log: (message: string) => void = () => {},
  ) {
    this.#writes = new BatchWriter((rows) => this.#flush(rows));
  }

  set notifier(notifier: CancelNotifier) {
    this.#notifier = notifier;
  }

  /** Executions running on this process (the bound tests and metrics read). */
  get liveCount(): number {
    return this.#live.size;
  }

  /**
   * Opens an execution for `who`, or refuses it: an unknown or ended parent, a broader context
   * than the ceiling allows, a tool outside the context, a timeout above its maximum, a second
   * task in one conversation, or a used-up rate or concurrency limit.
   */
  async open(who: OperatorClaims | Principal, spec: OpenSpec): Promise<ExecutionHandle> {
    const { handle, recorded } = await this.openConcurrently(who, spec);
    try {
      await recorded;
    } catch (error) {
      this.#live.delete(handle.record.id);
      throw error;
    }
    return handle;
  }

  /**
   * As open(), but an execution that needs no count (no limit applies) is handed back while its
   * row is still on its way to the database: `recorded` settles once it is committed. The work
   * may start meanwhile, and the caller must await `recorded` before telling anyone the work
   * started (so a cancel through any relay finds the row). Should the write fail, the work's
   * signal aborts. On PostgreSQL the commit then overlaps the call instead of preceding it.
   */
  async openConcurrently(
    who: OperatorClaims | Principal,
    spec: OpenSpec,
  ): Promise<{ handle: ExecutionHandle; recorded: Promise<void> }> {
    const principal = asPrincipal(who);
    if (spec.sessionId !== undefined && !SESSION_ID_PATTERN.test(spec.sessionId)) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        "a session id is 1 to 128 printable characters without spaces",
      );
    }
    const sessionKey = spec.sessionId === undefined
      ? null
      : sessionKeyOf(principal, spec.sessionId);
    let parent = spec.parentId !== undefined
      ? await this.#ownRunning(principal, spec.parentId)
      : spec.kind !== "task" && sessionKey
      ? await this.#sessionTask(principal, sessionKey)
      : undefined;
    // A tree stays in one tenant (its record would otherwise name a tenant the work does not act
    // on). Work naming its parent and another tenant is refused; work that would join its
    // conversation's task in another tenant runs beside it, as a root of the conversation.
    if (parent && spec.tenantId !== undefined && spec.tenantId !== parent.tenant_id) {
      if (spec.parentId !== undefined) {
        throw new AegisError(
          "INVALID_ARGUMENT",
          `execution ${parent.id} acts on tenant "${parent.tenant_id}"; work under it cannot act ` +
            `on tenant "${spec.tenantId.slice(0, 128)}"`,
        );
      }
      parent = undefined;
    }
    const tenantId = parent?.tenant_id ?? spec.tenantId ?? principal.tenant_id;
    if (!tenantsOf(principal).includes(tenantId)) {
      throw new AegisError("FORBIDDEN", `you have no rights on tenant "${tenantId}"`);
    }
    // The ceiling: what the parent runs under, or the caller's own context for a root.
    const ceiling = this.contexts.resolve(
      principal,
      parent?.context ?? principal.context,
      tenantId,
    );
    const context = spec.context === undefined
      ? ceiling
      : this.contexts.resolve(principal, spec.context, tenantId);
    requireWithin(context, ceiling);
    if (spec.tool) this.contexts.requireTool(context, spec.tool);
    requireWholeSeconds(spec.timeoutSecs);
    if (spec.timeoutSecs !== undefined && spec.timeoutSecs > context.max_timeout_secs) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `a timeout of ${spec.timeoutSecs}s is above the ${context.max_timeout_secs}s security ` +
          `context "${context.name}" allows`,
      );
    }
    const now = this.clock();
    const lifetime = Math.min(
      spec.timeoutSecs ?? context.max_timeout_secs,
      context.max_timeout_secs,
    );
    const parentDeadline = parent?.deadline_at?.getTime() ?? Infinity;
    const id = `ex-${crypto.randomUUID()}`;
    const actor = actorOf(principal);
    const record: ExecutionRecord = {
      id,
      root_id: parent?.root_id ?? id,
      parent_id: parent?.id ?? null,
      tenant_id: tenantId,
      kind: spec.kind,
      title: storableText(spec.title, TITLE_MAX),
      context: context.name,
      identity_kind: actor.kind,
      issuer: actor.issuer,
      subject: actor.subject,
      status: "running",
      detail: null,
      ref: spec.ref === undefined ? null : storableText(spec.ref, REF_MAX),
      relay_id: this.relayId,
      // A child never outlives its parent.
      deadline_at: new Date(Math.min(now.getTime() + lifetime * 1000, parentDeadline)),
      created_at: now,
      ended_at: null,
      cancel_requested_by: null,
    };
    const counted = spec.kind !== "node_call" && (spec.tool === undefined || isCounted(spec.tool));
    const rootSession = parent ? null : sessionKey;
    if (needsCheck(spec.kind, counted, context)) {
      await this.#insertChecked(record, counted, rootSession, context, actor);
      return { handle: this.#handle(record, context, parent?.id), recorded: Promise.resolve() };
    }
    const recorded = this.#writes.write({ op: "insert", record, counted, sessionKey: rootSession });
    const handle = this.#handle(record, context, parent?.id);
    recorded.catch((error) => {
      this.log(`execution ${record.id} could not be recorded; its work is stopped: ${error}`);
      this.abortLocal([record.id]);
    });
    return { handle, recorded };
  }

  /**
   * A child of an execution running on this process, under its context (a fleet operation's
   * host): no lookup, no limit (the parent was checked), written with the next group commit.
   */
  async openChild(
    parent: ExecutionHandle,
    spec: { kind: ExecutionKind; title: string; ref?: string; timeoutSecs?: number },
  ): Promise<ExecutionHandle> {
    requireWholeSeconds(spec.timeoutSecs);
    const now = this.clock();
    const lifetime = Math.min(
      spec.timeoutSecs ?? parent.context.max_timeout_secs,
      parent.context.max_timeout_secs,
    );
    const id = `ex-${crypto.randomUUID()}`;
    const record: ExecutionRecord = {
      ...parent.record,
      id,
      parent_id: parent.record.id,
      kind: spec.kind,
      title: storableText(spec.title, TITLE_MAX),
      status: "running",
      detail: null,
      ref: spec.ref === undefined ? null : storableText(spec.ref, REF_MAX),
      relay_id: this.relayId,
      deadline_at: new Date(
        Math.min(
          now.getTime() + lifetime * 1000,
          parent.record.deadline_at?.getTime() ?? Infinity,
        ),
      ),
      created_at: now,
      ended_at: null,
      cancel_requested_by: null,
    };
    await this.#writes.write({ op: "insert", record, counted: false, sessionKey: null });
    return this.#handle(record, parent.context, parent.record.id);
  }

  /**
   * Cancels `id` and every running execution under it. Returns the ids it cancelled (none when
   * all had ended already).
   */
  async cancel(who: OperatorClaims | Principal, id: string, reason?: string): Promise<string[]> {
    const principal = asPrincipal(who);
    const target = await this.#visible(principal, id);
    this.#requireEnding(principal, target, "aegis.execution.cancel");
    return await this.#cancelTree(
      [target.id],
      storableText(`cancelled by ${principal.sub}${reason ? `: ${reason}` : ""}`, DETAIL_MAX),
      principal.sub,
    );
  }

  /** A conversation ended: its running work (its task and lone tool calls) is cancelled. */
  async endSession(who: OperatorClaims | Principal, sessionId: string): Promise<string[]> {
    const principal = asPrincipal(who);
    if (!SESSION_ID_PATTERN.test(sessionId)) return [];
    await this.#writes.drain();
    const roots = await this.db.query<{ id: string }>(
      `SELECT id FROM executions WHERE session_key = $1 AND status = 'running'`,
      [sessionKeyOf(principal, sessionId)],
    );
    if (!roots.length) return [];
    return await this.#cancelTree(roots.map((r) => r.id), "the session ended", principal.sub);
  }

  /** A task (or child task) the caller is done with: it ends, and any work still under it too. */
  async finish(who: OperatorClaims | Principal, id: string): Promise<string[]> {
    const principal = asPrincipal(who);
    const target = await this.#visible(principal, id);
    this.#requireEnding(principal, target, "aegis.execution.finish");
    if (target.kind !== "task") {
      throw new AegisError("INVALID_ARGUMENT", `${id} is a ${target.kind}, not a task; cancel it`);
    }
    if (target.status !== "running") {
      throw new AegisError("CONFLICT", `execution ${id} already ended (${target.status})`);
    }
    const cancelled = await this.#cancelTree(
      (await this.#children(id)).map((c) => c.id),
      "its task finished",
      principal.sub,
    );
    await this.db.query(
      `UPDATE executions SET status = 'succeeded', ended_at = $2 WHERE id = $1 AND status = 'running'`,
      [id, this.clock()],
    );
    this.#live.get(id)?.abort.abort();
    this.#live.delete(id);
    return cancelled;
  }

  async show(who: OperatorClaims | Principal, id: string): Promise<ExecutionRecord> {
    return await this.#visible(asPrincipal(who), id);
  }

  /** The whole tree `id` belongs to, from its root, children in start order. */
  async tree(
    who: OperatorClaims | Principal,
    id: string,
  ): Promise<{ root: ExecutionNode; truncated: boolean }> {
    const target = await this.#visible(asPrincipal(who), id);
    // The root first: a relay whose clock runs behind starts children "before" their root, and
    // a truncated view without its root would be no tree at all.
    const rows = await this.db.query<ExecutionRecord>(
      `SELECT ${COLUMNS} FROM executions WHERE root_id = $1
        ORDER BY parent_id IS NOT NULL, created_at, id LIMIT $2`,
      [target.root_id, MAX_TREE_NODES + 1],
    );
    const truncated = rows.length > MAX_TREE_NODES;
    const nodes = new Map<string, ExecutionNode>();
    for (const row of rows.slice(0, MAX_TREE_NODES)) nodes.set(row.id, { ...row, children: [] });
    let root: ExecutionNode | undefined;
    for (const node of nodes.values()) {
      if (node.parent_id === null) root = node;
      else nodes.get(node.parent_id)?.children.push(node);
    }
    if (!root) throw new AegisError("NOT_FOUND", `no execution ${id}`);
    return { root, truncated };
  }

  /** Root executions of a tenant, newest first. */
  async list(
    who: OperatorClaims | Principal,
    options: { tenantId?: string; status?: ExecutionStatus; limit?: number } = {},
  ): Promise<ExecutionRecord[]> {
    const principal = asPrincipal(who);
    const tenant = options.tenantId ?? principal.tenant_id;
    if (!tenantsOf(principal).includes(tenant)) {
      throw new AegisError("FORBIDDEN", `you have no rights on tenant "${tenant}"`);
    }
    await this.#writes.drain();
    // Whole and bounded: a query string's "2.5" or "abc" is no SQL LIMIT.
    const asked = Math.floor(options.limit ?? 50);
    const limit = Number.isFinite(asked) ? Math.min(MAX_LIST, Math.max(1, asked)) : 50;
    const own = ownOnly(principal);
    return await this.db.query<ExecutionRecord>(
      `SELECT ${COLUMNS} FROM executions
        WHERE tenant_id = $1 AND parent_id IS NULL AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR (subject = $3 AND issuer = $5))
        ORDER BY created_at DESC, id DESC LIMIT $4`,
      [tenant, options.status ?? null, own?.subject ?? null, limit, own?.issuer ?? null],
    );
  }

  /** Another relay cancelled these: abort whatever of them runs here. */
  abortLocal(ids: readonly string[]): void {
    for (const id of ids) {
      const live = this.#live.get(id);
      if (!live) continue;
      live.abort.abort();
      if (live.task) this.#live.delete(id);
    }
  }

  /**
   * Running executions past their deadline are cancelled with everything under them (a task's
   * deadline is its context's maximum timeout, so an abandoned conversation ends too).
   */
  async sweep(): Promise<number> {
    await this.#writes.drain();
    await this.reconcile();
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM executions WHERE status = 'running' AND deadline_at < $1 LIMIT 1000`,
      [this.clock()],
    );
    if (!rows.length) return 0;
    const cancelled = await this.#cancelTree(rows.map((r) => r.id), "its deadline passed", null);
    return cancelled.length;
  }

  /**
   * Aborts work running here whose execution the database says ended: a cancellation whose
   * relay-bus signal was lost (the LISTEN connection dropped) still takes effect.
   */
  async reconcile(): Promise<void> {
    const ids = [...this.#live.keys()];
    for (let i = 0; i < ids.length; i += 5_000) {
      const ended = await this.db.query<{ id: string }>(
        `SELECT id FROM executions WHERE id = ANY($1::text[]) AND status <> 'running'`,
        [ids.slice(i, i + 5_000)],
      );
      this.abortLocal(ended.map((r) => r.id));
    }
  }

  /** At start-up: executions this relay ran before it stopped cannot be running any more. */
  async interruptOrphans(): Promise<void> {
    await this.db.query(
      `UPDATE executions SET status = 'failed', ended_at = $2,
          detail = 'interrupted: the controller running it stopped'
        WHERE relay_id = $1 AND status = 'running' AND kind <> 'task'`,
      [this.relayId, this.clock()],
    );
  }

  async drain(): Promise<void> {
    await this.#writes.drain();
  }

  /**
   * Trees whose root ended more than EXECUTION_RETENTION_DAYS ago are deleted (their children go
   * with them): the table holds the recent history, not all of it. The audit log keeps what was
   * done for as long as each context says.
   */
  async prune(now: Date): Promise<number> {
    const before = new Date(now.getTime() - EXECUTION_RETENTION_DAYS * 86_400_000);
    const [{ n }] = await this.db.query<{ n: number }>(
      `WITH d AS (
         DELETE FROM executions WHERE id IN (
           SELECT id FROM executions
            WHERE parent_id IS NULL AND status <> 'running' AND ended_at < $1 LIMIT 10000)
         RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [before],
    );
    return n;
  }

  #handle(record: ExecutionRecord, context: ResolvedContext, parentId?: string): ExecutionHandle {
    const abort = new AbortController();
    const parentSignal = parentId ? this.#live.get(parentId)?.abort.signal : undefined;
    const signal = parentSignal ? AbortSignal.any([abort.signal, parentSignal]) : abort.signal;
    this.#live.set(record.id, { abort, task: record.kind === "task" });
    let ended = false;
    return {
      record,
      context,
      signal,
      setRef: (ref: string) => {
        record.ref = storableText(ref, REF_MAX);
        void this.#writes.write({ op: "ref", id: record.id, ref: record.ref }).catch((e) =>
          this.log(`execution ${record.id}: ref not recorded: ${e}`)
        );
      },
      end: async (status, detail) => {
        if (ended) return;
        ended = true;
        this.#live.delete(record.id);
        await this.#writes.write({
          op: "end",
          id: record.id,
          status,
          detail: detail === undefined ? null : storableText(detail, DETAIL_MAX),
          at: this.clock(),
        });
      },
    };
  }

  /** Marks the trees under `ids` cancelled, aborts their work here and tells the other relays. */
  async #cancelTree(ids: string[], detail: string, by: string | null): Promise<string[]> {
    if (!ids.length) return [];
    await this.#writes.drain();
    const now = this.clock();
    const rows = await this.db.query<{ id: string; relay_id: string }>(
      `WITH RECURSIVE tree AS (
         SELECT id FROM executions WHERE id = ANY($1::text[])
         UNION ALL
         SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id
       )
       UPDATE executions SET status = 'cancelled', ended_at = $2, detail = $3,
              cancel_requested_by = $4, cancel_requested_at = $2
        WHERE id IN (SELECT id FROM tree) AND status = 'running'
        RETURNING id, relay_id`,
      [ids, now, detail, by],
    );
    const cancelled = rows.map((r) => r.id);
    this.abortLocal(cancelled);
    const elsewhere = rows.filter((r) => r.relay_id !== this.relayId).map((r) => r.id);
    if (elsewhere.length && this.#notifier) {
      await this.#notifier.cancelElsewhere(elsewhere).catch((error) =>
        this.log(`cancelling ${elsewhere.length} execution(s) on other relays failed: ${error}`)
      );
    }
    return cancelled;
  }

  async #children(id: string): Promise<{ id: string }[]> {
    return await this.db.query<{ id: string }>(
      `SELECT id FROM executions WHERE parent_id = $1 AND status = 'running'`,
      [id],
    );
  }

  /**
   * Ending work is a write whatever the transport (REST has no tool list to hide it behind): the
   * caller's own context must hold the tool, which a readonly operator's never does.
   */
  #requireEnding(
    principal: Principal,
    target: ExecutionRecord,
    tool: "aegis.execution.cancel" | "aegis.execution.finish",
  ): void {
    this.contexts.requireTool(this.contexts.resolve(principal, undefined, target.tenant_id), tool);
  }

  /** An execution the caller may see: in its tenants, and its own when it is a consumer. */
  async #visible(principal: Principal, id: string): Promise<ExecutionRecord> {
    if (!EXECUTION_ID_PATTERN.test(id)) {
      throw new AegisError("INVALID_ARGUMENT", `"${id.slice(0, 64)}" is not an execution id`);
    }
    await this.#writes.drain();
    const rows = await this.db.query<ExecutionRecord>(
      `SELECT ${COLUMNS} FROM executions WHERE id = $1 AND tenant_id = ANY($2::text[])`,
      [id, tenantsOf(principal)],
    );
    const row = rows[0];
    const own = ownOnly(principal);
    if (!row || (own !== null && (row.subject !== own.subject || row.issuer !== own.issuer))) {
      throw new AegisError("NOT_FOUND", `no execution ${id}`);
    }
    return row;
  }

  /** A parent named by the caller: its own (same issuer and subject) and still running. */
  async #ownRunning(principal: Principal, id: string): Promise<ExecutionRecord> {
    const row = await this.#visible(principal, id);
    if (row.issuer !== principal.iss || row.subject !== principal.sub) {
      throw new AegisError("FORBIDDEN", `execution ${id} belongs to ${row.subject}`, {
        hint: "Work runs only under your own executions.",
      });
    }
    if (row.status !== "running") {
      throw new AegisError("CONFLICT", `execution ${id} already ended (${row.status})`);
    }
    return row;
  }

  async #sessionTask(principal: Principal, sessionKey: string) {
    await this.#writes.drain();
    const rows = await this.db.query<ExecutionRecord>(
      `SELECT ${COLUMNS} FROM executions
        WHERE session_key = $1 AND parent_id IS NULL AND kind = 'task' AND status = 'running'`,
      [sessionKey],
    );
    return rows[0]?.tenant_id && tenantsOf(principal).includes(rows[0].tenant_id)
      ? rows[0]
      : undefined;
  }

  /**
   * Inserts under the caller's limits. The count and the insert run in one transaction holding
   * an advisory lock on (tenant, subject), so relays sharing a database cannot both take the
   * last slot.
   */
  async #insertChecked(
    record: ExecutionRecord,
    counted: boolean,
    sessionKey: string | null,
    context: ResolvedContext,
    actor: Actor,
  ): Promise<void> {
    await this.#writes.drain();
    const now = record.created_at;
    try {
      await this.db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))::text`, [
          `aegis-executions:${record.tenant_id}:${actor.issuer}:${actor.subject}`,
        ]);
        await refuseOverLimits(tx, record, counted, context, now);
        await insertRows(tx, [{ record, counted, sessionKey }]);
      });
    } catch (error) {
      if ((error as { code?: string }).code === "23505") {
        throw new AegisError(
          "EXECUTION_ACTIVE",
          "a task is already running in this session; a session runs one top-level task at a time",
        );
      }
      throw error;
    }
  }

  async #flush(rows: Write[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const inserts = rows.filter((r) => r.op === "insert");
      if (inserts.length) await insertRows(tx, inserts);
      for (const row of rows) {
        if (row.op === "end") {
          await tx.query(
            `UPDATE executions SET status = $2, detail = COALESCE($3, detail), ended_at = $4
              WHERE id = $1 AND status = 'running'`,
            [row.id, row.status, row.detail, row.at],
          );
        } else if (row.op === "ref") {
          await tx.query(`UPDATE executions SET ref = $2 WHERE id = $1`, [row.id, row.ref]);
        }
      }
    });
  }
}

const COLUMNS = `id, root_id, parent_id, tenant_id, kind, title, context, identity_kind, issuer,
  subject, status, detail, ref, relay_id, deadline_at, created_at, ended_at, cancel_requested_by`;

/** A conversation is the caller's own: the same session id from two users is two sessions. */
function sessionKeyOf(principal: Principal, sessionId: string): string {
  return createHash("sha256").update(JSON.stringify([principal.iss, principal.sub, sessionId]))
    .digest("hex");
}

/**
 * Consumers see their own executions only (their issuer's subject: an operator administering the
 * tenant may carry the same subject); an operator sees its tenants' (null).
 */
function ownOnly(principal: Principal): { issuer: string; subject: string } | null {
  return principal.kind === "consumer" ? { issuer: principal.iss, subject: principal.sub } : null;
}

/**
 * A timeout is whole seconds, at least one: zero or less is a deadline already passed, and NaN no
 * date at all (its row would fail the group commit of every execution written with it).
 */
function requireWholeSeconds(timeoutSecs: number | undefined): void {
  if (timeoutSecs === undefined || (Number.isSafeInteger(timeoutSecs) && timeoutSecs >= 1)) return;
  throw new AegisError(
    "INVALID_ARGUMENT",
    `a timeout is a whole number of seconds, at least 1 (not ${timeoutSecs})`,
  );
}

function isCounted(tool: EdgeToolName): boolean {
  return TOOL_COUNTED.has(tool);
}

const TOOL_COUNTED = new Set(
  (Object.keys(EDGE_TOOLS) as EdgeToolName[]).filter((tool) => EDGE_TOOLS[tool].counted),
);

/** Whether opening needs the locked count: a task (bounded per identity) or a limited context. */
function needsCheck(kind: ExecutionKind, counted: boolean, context: ResolvedContext): boolean {
  if (kind === "task") return true;
  if (kind === "node_call") return false;
  return (counted &&
    (context.executions_per_minute !== null || context.executions_per_day !== null)) ||
    context.max_concurrent !== null;
}

async function refuseOverLimits(
  tx: Queryable,
  record: ExecutionRecord,
  counted: boolean,
  context: ResolvedContext,
  now: Date,
): Promise<void> {
  const who = [record.tenant_id, record.issuer, record.subject];
  const quota = (message: string, retryAfterSecs: number) =>
    new AegisError("QUOTA_EXCEEDED", message, {
      details: {
        retry_after_secs: String(Math.max(1, Math.ceil(retryAfterSecs))),
        context: context.name,
      },
      hint: `Retry in ${Math.max(1, Math.ceil(retryAfterSecs))} s.`,
    });
  if (record.kind === "task") {
    const [{ n }] = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM executions
        WHERE tenant_id = $1 AND issuer = $2 AND subject = $3 AND status = 'running' AND kind = 'task'`,
      who,
    );
    if (n >= MAX_RUNNING_TASKS) {
      throw quota(`you already have ${n} tasks running (at most ${MAX_RUNNING_TASKS})`, 60);
    }
  } else if (context.max_concurrent !== null) {
    const running = await tx.query<{ n: number; next_end: Date | null }>(
      `SELECT count(*)::int AS n, min(deadline_at) AS next_end FROM executions
        WHERE tenant_id = $1 AND issuer = $2 AND subject = $3 AND status = 'running'
          AND kind NOT IN ('task', 'node_call')`,
      who,
    );
    if (running[0].n >= context.max_concurrent) {
      const wait = running[0].next_end
        ? (running[0].next_end.getTime() - now.getTime()) / 1000
        : 60;
      throw quota(
        `security context "${context.name}" runs at most ${context.max_concurrent} execution(s) ` +
          `at once and ${running[0].n} are running; retry when one ends (at the latest in ` +
          `${Math.max(1, Math.ceil(wait))} s)`,
        Math.min(wait, 60),
      );
    }
  }
  if (!counted) return;
  for (
    const [limit, windowSecs, per] of [
      [context.executions_per_minute, 60, "minute"],
      [context.executions_per_day, 86_400, "day"],
    ] as const
  ) {
    if (limit === null) continue;
    const since = new Date(now.getTime() - windowSecs * 1000);
    const [{ n, oldest }] = await tx.query<{ n: number; oldest: Date | null }>(
      `SELECT count(*)::int AS n, min(created_at) AS oldest FROM executions
        WHERE tenant_id = $1 AND issuer = $2 AND subject = $3 AND counted AND created_at > $4`,
      [...who, since],
    );
    if (n >= limit) {
      // The window frees a slot when its oldest execution leaves it.
      const wait = oldest ? (oldest.getTime() + windowSecs * 1000 - now.getTime()) / 1000 : 1;
      throw quota(
        `security context "${context.name}" allows ${limit} execution(s) per ${per}; ` +
          `retry in ${Math.max(1, Math.ceil(wait))} s`,
        wait,
      );
    }
  }
}

async function insertRows(
  tx: Queryable,
  rows: { record: ExecutionRecord; counted: boolean; sessionKey: string | null }[],
): Promise<void> {
  const cols = 19;
  const params: unknown[] = [];
  const tuples = rows.map(({ record: r, counted, sessionKey }, i) => {
    params.push(
      r.id,
      r.root_id,
      r.parent_id,
      r.tenant_id,
      sessionKey,
      r.kind,
      r.title,
      r.context,
      r.identity_kind,
      r.issuer,
      r.subject,
      counted,
      r.status,
      r.ref,
      r.relay_id,
      r.deadline_at,
      r.created_at,
      r.detail,
      r.cancel_requested_by,
    );
    const base = i * cols;
    return `(${Array.from({ length: cols }, (_, k) => `$${base + k + 1}`).join(", ")})`;
  });
  await tx.query(
    `INSERT INTO executions (id, root_id, parent_id, tenant_id, session_key, kind, title, context,
       identity_kind, issuer, subject, counted, status, ref, relay_id, deadline_at, created_at,
       detail, cancel_requested_by)
     VALUES ${tuples.join(", ")}`,
    params,
  );
}
