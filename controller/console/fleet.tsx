// Fleet operations: the recent operations of the operator's tenants, one operation's waves and
// per-node results, and a form that starts one after previewing which hosts its target selects.
// Every read and change goes through FleetDispatcher, the service REST calls: the preview is its
// preview() (the selection run() makes), a start is its start() (the operation runs to its end on
// the controller whether or not the browser stays), and the pages read what it keeps.
import { asPrincipal } from "../app/identity.ts";
import type { Context, Hono } from "hono";
import type { Child } from "hono/jsx";
import { createHash } from "node:crypto";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import type { NodeOutcome } from "../../shared/fleet_events.ts";
import { displayStatus, effectiveStatus } from "../app/daemons.ts";
import type {
  FleetOperationRecord,
  FleetOperationSummary,
  FleetRequest,
  FleetResultRecord,
  FleetSelection,
  OperationName,
} from "../app/fleet/dispatcher.ts";
import { parseErrorPolicy, parseMode } from "../app/fleet/policy.ts";
import { TARGET_FORMS } from "../app/fleet/target.ts";
import { type Operator, requireWriter, tenantsOf } from "../app/operators.ts";
import type { ConsoleDeps } from "./deps.ts";
import type { ConsoleEnv } from "./session.ts";
import { ErrorBox, Page, StatusBadge } from "./layout.tsx";
import { Age, Chips, labelPairs, Select, TableHead } from "./components.tsx";

export const FLEET_REFRESH = "every 2s";
export const FLEET_PAGE_SIZE = 50;
const MAX_TARGET = 2_000;
const MAX_COMMAND = 16_384;

/** What the start form offers: the operations of OPERATIONS that take no release to serve. */
export const START_OPERATIONS: Partial<Record<OperationName, string>> = {
  "exec": "Run a command (exec)",
  "keys.rotate": "Rotate node keys",
  "token.refresh": "Refresh node tokens",
};

const OUTCOMES: NodeOutcome[] = ["ok", "failed", "timed_out", "offline", "skipped"];

export function fleetPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get("/fleet", async (c) => {
    const operator = c.get("operator");
    const params = new URL(c.req.url).searchParams;
    const page = Math.max(1, Math.min(10_000, Math.trunc(Number(params.get("page")) || 1)));
    // One more than a page says whether there is a next one.
    const rows = await deps.fleet.list(operator, {
      limit: FLEET_PAGE_SIZE + 1,
      offset: (page - 1) * FLEET_PAGE_SIZE,
    });
    const list: OperationList = {
      rows: rows.slice(0, FLEET_PAGE_SIZE),
      page,
      more: rows.length > FLEET_PAGE_SIZE,
      manyTenants: tenantsOf(operator).length > 1,
    };
    const fingerprint = fingerprintOf([list.page, list.more, list.rows]);
    c.header("cache-control", "no-store");
    if (isRefresh(c, "ops")) {
      if (params.get("v") === fingerprint) return c.body(null, 204);
      return c.html(<OperationsTable list={list} fingerprint={fingerprint} />);
    }
    return c.html(
      <Page title="Fleet operations" section="fleet" operator={operator} csrf={c.get("csrf")}>
        {isWriter(operator)
          ? (
            <p>
              <a class="button" href="/console/fleet/new">Start an operation</a>
            </p>
          )
          : null}
        <OperationsTable list={list} fingerprint={fingerprint} />
      </Page>,
    );
  });

  // Before /fleet/:opId.
  app.get("/fleet/new", (c) => {
    const operator = c.get("operator");
    requireWriter(operator, "start fleet operations");
    // A link may choose the tenant and target, never what runs: a crafted link must not arrive
    // with a command, a shell or a parallel mode filled in for someone to click Start on.
    const query = new URL(c.req.url).searchParams;
    const form = readForm(
      (name) => (name === "tenant" || name === "target") ? query.get(name) ?? undefined : undefined,
      operator,
    );
    c.header("cache-control", "no-store");
    return c.html(<StartPage operator={operator} csrf={c.get("csrf")} form={form} />);
  });

  app.post("/fleet/preview", async (c) => {
    const operator = c.get("operator");
    const body = await c.req.parseBody();
    const form = readForm((name) => field(body, name), operator);
    c.header("cache-control", "no-store");
    let preview: PreviewResult;
    try {
      preview = { selection: await deps.fleet.preview(operator, form.target, form.tenant) };
    } catch (error) {
      preview = { error: toAegisError(error) };
    }
    // htmx swaps only what it asked for; an error is part of that answer, not a failed request.
    if (isRefresh(c, "preview")) {
      return c.html(<Preview result={preview} deps={deps} />);
    }
    return c.html(
      <StartPage operator={operator} csrf={c.get("csrf")} form={form}>
        <Preview result={preview} deps={deps} />
      </StartPage>,
      preview.error ? statusOf(preview.error) : 200,
    );
  });

  app.post("/fleet", async (c) => {
    const operator = c.get("operator");
    // Refused before the form is even read: a readonly session never starts anything.
    requireWriter(operator, "start fleet operations");
    const body = await c.req.parseBody();
    const form = readForm((name) => field(body, name), operator);
    try {
      const started = await deps.actions.startFleet(asPrincipal(operator), toRequest(form));
      return c.redirect(`/console/fleet/${encodeURIComponent(started.op_id)}`, 303);
    } catch (error) {
      const aegis = toAegisError(error);
      if (aegis.code === "INTERNAL") throw error;
      c.header("cache-control", "no-store");
      return c.html(
        <StartPage operator={operator} csrf={c.get("csrf")} form={form} error={aegis} />,
        statusOf(aegis),
      );
    }
  });

  app.post("/fleet/:opId/stop", async (c) => {
    const opId = c.req.param("opId");
    await deps.fleet.stop(c.get("operator"), opId);
    return c.redirect(`/console/fleet/${encodeURIComponent(opId)}`, 303);
  });

  app.get("/fleet/:opId", async (c) => {
    const operator = c.get("operator");
    const opId = c.req.param("opId");
    // The refresh compares a one-row aggregate; the whole operation is read only when it moved.
    const fingerprint = fingerprintOf(await deps.fleet.progress(operator, opId));
    c.header("cache-control", "no-store");
    if (isRefresh(c, "op") && new URL(c.req.url).searchParams.get("v") === fingerprint) {
      return c.body(null, 204);
    }
    const op = await deps.fleet.show(operator, opId);
    // Writers get the Stop button (the form carries their CSRF token); readonly gets none.
    const csrf = isWriter(operator) ? c.get("csrf") : undefined;
    if (isRefresh(c, "op")) {
      return c.html(<OperationDetail op={op} fingerprint={fingerprint} csrf={csrf} />);
    }
    return c.html(
      <Page
        title={`Fleet operation ${op.op_id}`}
        section="fleet"
        operator={operator}
        csrf={c.get("csrf")}
      >
        <p>
          <a href="/console/fleet">← All fleet operations</a>
        </p>
        <OperationDetail op={op} fingerprint={fingerprint} csrf={csrf} />
      </Page>,
    );
  });
}

// ---------------------------------------------------------------------------------------------
// The start form: its fields as the browser sends them, and the FleetRequest they make.

export interface StartForm {
  tenant: string;
  operation: OperationName;
  target: string;
  mode: "sequential" | "rolling" | "parallel";
  width: string;
  onError: "continue" | "stop-after" | "fail-fast";
  stopAfter: string;
  deadline: string;
  command: string;
  runAs: "argv" | "shell";
  keepOld: string;
}

function pick<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? value as T : fallback;
}

/** The form's values, defaulted as the CLI defaults them (rolling=5, continue, 60 s, 24 h). */
function readForm(get: (name: string) => string | undefined, operator: Operator): StartForm {
  const text = (name: string, fallback: string, max = 200) => (get(name) ?? fallback).slice(0, max);
  return {
    // As sent: a tenant the operator has no rights on is refused by the service, not swapped.
    tenant: text("tenant", "", 200) || operator.tenant_id,
    operation: pick(
      get("operation"),
      Object.keys(START_OPERATIONS) as OperationName[],
      "exec",
    ),
    target: text("target", "", MAX_TARGET),
    mode: pick(get("mode"), ["sequential", "rolling", "parallel"] as const, "rolling"),
    width: text("width", "5"),
    onError: pick(get("on_error"), ["continue", "stop-after", "fail-fast"] as const, "continue"),
    stopAfter: text("stop_after", "1"),
    deadline: text("deadline_secs", "60"),
    command: text("command", "", MAX_COMMAND),
    runAs: pick(get("run_as"), ["argv", "shell"] as const, "argv"),
    keepOld: text("keep_old", "24h", 40),
  };
}

function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  return typeof value === "string" ? value : undefined;
}

function wholeNumber(text: string, what: string, min: number, max: number): number {
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || value < min || value > max) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `${what} must be a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/** The request REST would get for the same choices: mode and policy parsed by policy.ts. */
export function toRequest(form: StartForm): FleetRequest {
  if (form.target.trim() === "") {
    throw new AegisError("INVALID_ARGUMENT", "give a target: which hosts to run on", {
      hint: TARGET_FORMS,
    });
  }
  const deadlineSecs = wholeNumber(form.deadline, "the deadline per node (seconds)", 1, 86_400);
  const mode = parseMode(
    form.mode === "rolling"
      ? `rolling=${wholeNumber(form.width, "the rolling width", 1, 100_000)}`
      : form.mode,
  );
  const onError = parseErrorPolicy(
    form.onError === "stop-after"
      ? `stop-after=${wholeNumber(form.stopAfter, "stop after N failures", 1, 100_000)}`
      : form.onError,
  );
  let args: Record<string, unknown> = {};
  if (form.operation === "exec") {
    if (form.command.trim() === "") {
      throw new AegisError("INVALID_ARGUMENT", "exec needs a command to run");
    }
    // As the CLI sends it: the host's own timeout is the node's deadline.
    args = form.runAs === "shell"
      ? { shell: form.command, timeout_secs: deadlineSecs }
      : { argv: splitCommand(form.command), timeout_secs: deadlineSecs };
  } else if (form.operation === "keys.rotate") {
    if (!/^\d+(ms|s|m|h|d)$/.test(form.keepOld.trim())) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `keep the old key for "${form.keepOld}": give a duration such as 24h, 90m or 7d`,
      );
    }
    args = { keep_old: form.keepOld.trim() };
  }
  return {
    operation: form.operation,
    target: form.target,
    mode,
    onError,
    deadlineSecs,
    arguments: args,
    tenantId: form.tenant,
  };
}

/**
 * Words of a command line as a POSIX shell splits them, without running a shell: spaces separate
 * words, '…' keeps everything literal, "…" and \ escape. The host then runs argv[0] itself, which
 * its policy allows without "shell".
 */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === "\\" && i + 1 < chars.length && '"\\$`'.includes(chars[i + 1])) {
        word += chars[++i];
      } else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === "\\" && i + 1 < chars.length) {
      word += chars[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) {
    throw new AegisError("INVALID_ARGUMENT", `the command has an unclosed ${quote} quote`, {
      hint: `Close it, or choose "shell command line" to hand the line to the host's shell.`,
    });
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new AegisError("INVALID_ARGUMENT", "exec needs a command to run");
  return words;
}

// ---------------------------------------------------------------------------------------------
// Rendering.

const isWriter = (operator: Operator) =>
  operator.aegis_role === "admin" || operator.aegis_role === "operator";

/** An htmx request for the fragment with this id (a poll or the preview button). */
function isRefresh(c: Context, id: string): boolean {
  return c.req.header("hx-request") === "true" && c.req.header("hx-target") === id;
}

function statusOf(error: AegisError): 400 | 403 | 404 | 409 {
  const status = error.httpStatus;
  return status === 403 || status === 404 || status === 409 ? status : 400;
}

function fingerprintOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

function failures(counts: Record<NodeOutcome, number>): number {
  return counts.failed + counts.timed_out + counts.offline;
}

function finishedCount(counts: Record<NodeOutcome, number>): number {
  return OUTCOMES.reduce((sum, outcome) => sum + counts[outcome], 0);
}

function countsOf(results: readonly FleetResultRecord[]): Record<NodeOutcome, number> {
  const counts: Record<NodeOutcome, number> = {
    ok: 0,
    failed: 0,
    timed_out: 0,
    offline: 0,
    skipped: 0,
  };
  for (const result of results) counts[result.status]++;
  return counts;
}

/** "3 ok, 2 failed (1 offline, 1 timed out), 0 skipped": the CLI's summary line. */
function Progress(props: { counts: Record<NodeOutcome, number>; total: number }) {
  const { counts, total } = props;
  const failed = failures(counts);
  const why = [
    counts.offline ? `${counts.offline} offline` : "",
    counts.timed_out ? `${counts.timed_out} timed out` : "",
  ].filter(Boolean).join(", ");
  return (
    <span>
      {counts.ok} ok, {failed} failed{why ? ` (${why})` : ""}, {counts.skipped} skipped{" "}
      <span class="muted">· {finishedCount(counts)} of {total} ended</span>
    </span>
  );
}

function duration(from: Date, to: Date): string {
  const ms = Math.max(0, new Date(to).getTime() - new Date(from).getTime());
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

interface OperationList {
  rows: FleetOperationSummary[];
  page: number;
  more: boolean;
  manyTenants: boolean;
}

/**
 * A section that, while `poll` is set, asks for itself again every FLEET_REFRESH (the server
 * answers 204 while its fingerprint is unchanged). Polls only while an operation runs; once none
 * does, the swapped-in section stops asking.
 */
function Refreshing(props: {
  id: string;
  label: string;
  poll: string | undefined;
  fingerprint: string;
  children: Child;
}) {
  const { poll } = props;
  return (
    <section
      id={props.id}
      aria-label={props.label}
      hx-get={poll}
      hx-trigger={poll ? FLEET_REFRESH : undefined}
      hx-target={poll ? "this" : undefined}
      hx-swap={poll ? "outerHTML" : undefined}
      data-fingerprint={props.fingerprint}
    >
      {props.children}
    </section>
  );
}

function OperationsTable(props: { list: OperationList; fingerprint: string }) {
  const { list } = props;
  const running = list.rows.some((op) => op.status === "running");
  const self = `/console/fleet${list.page > 1 ? `?page=${list.page}` : ""}`;
  const poll = `${self}${self.includes("?") ? "&" : "?"}v=${props.fingerprint}`;
  return (
    <Refreshing
      id="ops"
      label="Fleet operations"
      poll={running ? poll : undefined}
      fingerprint={props.fingerprint}
    >
      {list.rows.length === 0
        ? (
          <div class="card">
            {list.page > 1 ? "No operations on this page." : "No fleet operations yet."}
          </div>
        )
        : (
          <table class="responsive">
            <TableHead
              columns={[
                "Operation id",
                "Operation",
                "Target",
                list.manyTenants && "Tenant",
                "Mode",
                "Started by",
                "Started",
                "Status",
                "Progress",
              ]}
            />
            <tbody>
              {list.rows.map((op) => (
                <tr data-op-id={op.op_id}>
                  <td data-label="Operation id" class="mono">
                    <a href={`/console/fleet/${encodeURIComponent(op.op_id)}`}>{op.op_id}</a>
                  </td>
                  <td data-label="Operation">{op.operation}</td>
                  <td data-label="Target" class="mono">{op.target}</td>
                  {list.manyTenants ? <td data-label="Tenant">{op.tenant_id}</td> : null}
                  <td data-label="Mode">
                    {op.mode} <span class="muted">· on error {op.on_error}</span>
                  </td>
                  <td data-label="Started by">{op.requested_by}</td>
                  <td data-label="Started">
                    <Age at={op.started_at} />
                  </td>
                  <td data-label="Status">
                    <StatusBadge status={op.status} />
                  </td>
                  <td data-label="Progress">
                    <Progress counts={op.counts} total={op.total} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      {list.page > 1 || list.more
        ? (
          <nav class="pager" aria-label="Pages">
            {list.page > 1
              ? <a href={`/console/fleet?page=${list.page - 1}`} rel="prev">← Newer</a>
              : null}
            <span>Page {list.page}</span>
            {list.more
              ? <a href={`/console/fleet?page=${list.page + 1}`} rel="next">Older →</a>
              : null}
          </nav>
        )
        : null}
    </Refreshing>
  );
}

type ShownOperation = FleetOperationRecord & { results: FleetResultRecord[] };

/** Waves as the dispatcher numbers them: the k-th group of the mode's width, in target order. */
function waveSizes(op: FleetOperationRecord): number[] {
  let width = op.total;
  try {
    const mode = parseMode(op.mode);
    if (Number.isFinite(mode.waveSize)) width = mode.waveSize;
  } catch { /* a mode this version cannot read: one wave of everything */ }
  width = Math.max(1, width);
  const sizes: number[] = [];
  for (let start = 0; start < op.total; start += width) {
    sizes.push(Math.min(width, op.total - start));
  }
  return sizes;
}

function OperationDetail(props: { op: ShownOperation; fingerprint: string; csrf?: string }) {
  const { op } = props;
  const running = op.status === "running";
  const stoppable = running && props.csrf !== undefined && !op.stop_requested_by;
  const counts = countsOf(op.results);
  const stopReason = op.results.find((r) => r.status === "skipped" && r.detail)?.detail;
  const sizes = waveSizes(op);
  const poll = `/console/fleet/${encodeURIComponent(op.op_id)}?v=${props.fingerprint}`;
  return (
    <Refreshing
      id="op"
      label="Operation"
      poll={running ? poll : undefined}
      fingerprint={props.fingerprint}
    >
      <div class="card">
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <StatusBadge status={op.status} />
            {running ? <span class="muted">updates by itself</span> : null}
          </dd>
          <dt>Progress</dt>
          <dd aria-live="polite">
            <Progress counts={counts} total={op.total} />
          </dd>
          {stopReason && op.status === "stopped"
            ? (
              <>
                <dt>Stopped</dt>
                <dd>{stopReason}</dd>
              </>
            )
            : null}
          {running && op.stop_requested_by
            ? (
              <>
                <dt>Stopping</dt>
                <dd>
                  {op.stop_requested_by} asked it to start no more hosts; those running finish.
                </dd>
              </>
            )
            : null}
          {op.status === "interrupted"
            ? (
              <>
                <dt>Interrupted</dt>
                <dd>
                  The controller driving it stopped or failed before every node ended; nodes without
                  a result below were not reported.
                </dd>
              </>
            )
            : null}
          <dt>Operation</dt>
          <dd>{op.operation}</dd>
          <dt>Target</dt>
          <dd class="mono">{op.target}</dd>
          <dt>Tenant</dt>
          <dd>{op.tenant_id}</dd>
          <dt>Mode</dt>
          <dd>{op.mode}, on error {op.on_error}, deadline {op.deadline_secs} s per node</dd>
          <dt>Started by</dt>
          <dd>{op.requested_by}</dd>
          <dt>Started</dt>
          <dd>
            <Age at={op.started_at} />
          </dd>
          <dt>{op.finished_at ? "Finished" : "Running for"}</dt>
          <dd>
            {op.finished_at
              ? (
                <>
                  <Age at={op.finished_at} /> (took {duration(op.started_at, op.finished_at)})
                </>
              )
              : <Age at={op.started_at} />}
          </dd>
        </dl>
        {stoppable
          ? (
            <form method="post" action={`/console/fleet/${encodeURIComponent(op.op_id)}/stop`}>
              <input type="hidden" name="_csrf" value={props.csrf} />
              <button type="submit" class="danger">Stop: start no more hosts</button>
            </form>
          )
          : null}
      </div>
      {sizes.map((size, i) => {
        const wave = i + 1;
        const results = op.results.filter((r) => r.wave === wave);
        const waveCounts = countsOf(results);
        const pending = size - results.length;
        return (
          <section aria-label={`Wave ${wave}`} data-wave={String(wave)}>
            <h2>
              Wave {wave} <span class="muted">· {size} node{size === 1 ? "" : "s"}</span>
            </h2>
            <p>
              <Progress counts={waveCounts} total={size} />
              {pending > 0 && running ? ` · ${pending} running or not started yet` : null}
              {pending > 0 && !running ? ` · ${pending} without a result` : null}
            </p>
            {results.length > 0
              ? (
                <table class="responsive">
                  <TableHead
                    columns={["Name", "Node id", "Result", "Exit code", "Reason", "Ended"]}
                  />
                  <tbody>
                    {results.map((r) => (
                      <tr data-node-id={r.node_id}>
                        <td data-label="Name">
                          <a href={`/console/hosts/${encodeURIComponent(r.node_id)}`}>
                            {r.name || r.node_id}
                          </a>
                        </td>
                        <td data-label="Node id" class="mono">{r.node_id}</td>
                        <td data-label="Result">
                          <StatusBadge status={r.status} />
                        </td>
                        <td data-label="Exit code">{r.exit_code ?? "—"}</td>
                        <td data-label="Reason">{r.detail || "—"}</td>
                        <td data-label="Ended">+{duration(op.started_at, r.finished_at)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )
              : null}
          </section>
        );
      })}
    </Refreshing>
  );
}

type PreviewResult = { selection: FleetSelection; error?: undefined } | {
  selection?: undefined;
  error: AegisError;
};

function Preview(props: { result: PreviewResult; deps: ConsoleDeps }) {
  const { result, deps } = props;
  if (result.error) {
    return (
      <section id="preview" aria-label="Preview" aria-live="polite">
        <ErrorBox message={result.error.message} hint={result.error.hint} />
      </section>
    );
  }
  const { selection } = result;
  const now = deps.clock();
  const rows = selection.hosts.map((host) => ({
    host,
    status: displayStatus(effectiveStatus(host, deps.heartbeatIntervalSecs, now)),
  }));
  const notConnected = rows.filter((r) => r.status !== "Connected").length;
  return (
    <section id="preview" aria-label="Preview" aria-live="polite" class="card">
      <h2>
        <span class="mono">{selection.description}</span> selects {rows.length}{" "}
        host{rows.length === 1 ? "" : "s"} in {selection.tenantId}
      </h2>
      {selection.note ? <div class="notice">{selection.note}</div> : null}
      {rows.length === 0
        ? <div class="notice">No host matches: Start would be refused.</div>
        : null}
      {notConnected > 0
        ? (
          <p class="muted">
            {notConnected} of them {notConnected === 1 ? "is" : "are"}{" "}
            not connected now; unless they connect first they will end as offline.
          </p>
        )
        : null}
      {rows.length > 0
        ? (
          <table class="responsive">
            <TableHead columns={["Name", "Node id", "Status", "Tags", "Labels"]} />
            <tbody>
              {rows.map(({ host, status }) => (
                <tr data-node-id={host.node_id}>
                  <td data-label="Name">{host.name || host.node_id}</td>
                  <td data-label="Node id" class="mono">{host.node_id}</td>
                  <td data-label="Status">
                    <StatusBadge status={status} />
                  </td>
                  <td data-label="Tags">
                    <Chips items={host.tags} />
                  </td>
                  <td data-label="Labels">
                    <Chips items={labelPairs(host.labels)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
        : null}
    </section>
  );
}

/** The start form's choices: the value the form posts, and what a person reads. */
const MODE_CHOICES = [
  ["rolling", "Rolling: a few hosts at a time"],
  ["sequential", "Sequential: one host at a time"],
  ["parallel", "Parallel: every host at once"],
] as const;
const ON_ERROR_CHOICES = [
  ["continue", "Continue with every host"],
  ["stop-after", "Stop after N failures"],
  ["fail-fast", "Stop at the first failure"],
] as const;
const RUN_AS_CHOICES = [
  ["argv", "Program and arguments (split like a shell, no shell runs)"],
  ["shell", `Shell command line (the host's policy must allow "shell")`],
] as const;

function StartPage(props: {
  operator: Operator;
  csrf: string;
  form: StartForm;
  error?: AegisError;
  children?: Child;
}) {
  const { operator, form } = props;
  const tenants = tenantsOf(operator);
  return (
    <Page title="Start a fleet operation" section="fleet" operator={operator} csrf={props.csrf}>
      <p>
        <a href="/console/fleet">← All fleet operations</a>
      </p>
      {props.error ? <ErrorBox message={props.error.message} hint={props.error.hint} /> : null}
      <form class="card" method="post" action="/console/fleet" aria-label="Start a fleet operation">
        <input type="hidden" name="_csrf" value={props.csrf} />
        <div class="grid2">
          <label>
            Tenant
            <Select name="tenant" value={form.tenant} options={tenants} />
          </label>
          <label>
            Operation
            <Select
              name="operation"
              value={form.operation}
              options={Object.entries(START_OPERATIONS) as [string, string][]}
            />
          </label>
        </div>
        <label>
          Target
          <input
            type="text"
            name="target"
            value={form.target}
            required
            maxlength={MAX_TARGET}
            class="mono"
            placeholder="labels=region:eu"
            aria-describedby="target-help"
            autocomplete="off"
            spellcheck={false}
          />
        </label>
        <p id="target-help" class="muted">
          {TARGET_FORMS}. Tags are operator-controlled; labels are self-reported by each host.
        </p>
        <div class="grid2">
          <label>
            Mode
            <Select name="mode" value={form.mode} options={MODE_CHOICES} />
          </label>
          <label>
            Rolling width (hosts at a time)
            <input type="number" name="width" value={form.width} min={1} max={100000} />
          </label>
          <label>
            On error
            <Select name="on_error" value={form.onError} options={ON_ERROR_CHOICES} />
          </label>
          <label>
            N failures (for “stop after”)
            <input type="number" name="stop_after" value={form.stopAfter} min={1} max={100000} />
          </label>
          <label>
            Deadline per host (seconds)
            <input
              type="number"
              name="deadline_secs"
              value={form.deadline}
              min={1}
              max={86400}
              required
            />
          </label>
        </div>
        <fieldset>
          <legend>Command (Run a command only)</legend>
          <label>
            Command
            <input
              type="text"
              name="command"
              value={form.command}
              maxlength={MAX_COMMAND}
              class="mono"
              placeholder="uptime"
              autocomplete="off"
              spellcheck={false}
            />
          </label>
          <label>
            Run as
            <Select name="run_as" value={form.runAs} options={RUN_AS_CHOICES} />
          </label>
        </fieldset>
        <fieldset>
          <legend>Key rotation only</legend>
          <label>
            Hosts keep the replaced key for
            <input type="text" name="keep_old" value={form.keepOld} maxlength={40} />
          </label>
        </fieldset>
        <div class="row">
          <button
            type="submit"
            class="secondary"
            formaction="/console/fleet/preview"
            hx-post="/console/fleet/preview"
            hx-target="#preview"
            hx-swap="outerHTML"
          >
            Preview hosts
          </button>
          <button type="submit">Start</button>
        </div>
      </form>
      {props.children ?? <section id="preview" aria-label="Preview" aria-live="polite"></section>}
    </Page>
  );
}
