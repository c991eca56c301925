// One Edge Host: what the controller knows of it (status, facts, credentials, capabilities,
// labels), its tags, its recent connections and commands, a command box with live output, and
// revocation behind a confirmation page that names the host. Every read and change goes through
// the services REST uses (DaemonRepository.require, tags.ts, ToolCallService via execRoute,
// RevocationService), so tenancy and roles are judged exactly as for `aegis edge …`. A readonly
// operator gets the same page with no control that changes anything, and the POST routes refuse
// them anyway.
import { asPrincipal } from "../app/identity.ts";
import type { Context, Hono } from "hono";
import { createHash } from "node:crypto";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import {
  authView,
  type DaemonRecord,
  displayStatus,
  effectiveStatus,
  lastErrorView,
} from "../app/daemons.ts";
import { connectionHistory, type ConnectionRecord } from "../app/connection_log.ts";
import { type Operator, requireWriter, tenantsOf } from "../app/operators.ts";
import { addTags, MAX_TAG_LENGTH, removeTags } from "../app/tags.ts";
import type { CallRecord } from "../app/tool_calls.ts";
import { execRoute } from "../api/calls.ts";
import type { ApiEnv } from "../api/auth.ts";
import type { ConsoleDeps } from "./deps.ts";
import type { ConsoleEnv } from "./session.ts";
import { ErrorBox, Page, StatusBadge } from "./layout.tsx";
import { Age, Chips, labelPairs, TableHead, Timestamp } from "./components.tsx";

/** How often an open host page asks whether its status or facts changed. */
export const HOST_REFRESH = "every 2s";
/** Commands and connections the page lists (the REST host view shows 20 commands too). */
export const HISTORY_SHOWN = 20;
export const CONNECTIONS_SHOWN = 20;

const hostPath = (nodeId: string) => `/console/hosts/${encodeURIComponent(nodeId)}`;

export function hostDetailPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const load = (c: Context<ConsoleEnv>) =>
    deps.daemons.require(c.req.param("nodeId")!, tenantsOf(c.get("operator")));

  app.get("/hosts/:nodeId", async (c) => {
    const operator = c.get("operator");
    const record = await load(c);
    const [live, history] = await Promise.all([
      liveView(deps, record),
      deps.calls.history(record.node_id, HISTORY_SHOWN),
    ]);
    const writer = isWriter(operator);
    c.header("cache-control", "no-store");
    return c.html(
      <Page title={displayName(record)} section="hosts" operator={operator} csrf={c.get("csrf")}>
        <p>
          <a href="/console/hosts">← Edge Hosts</a>
        </p>
        <Live view={live} />
        <Tags record={record} writer={writer} csrf={c.get("csrf")} />
        {writer && record.status !== "revoked" ? <Run record={record} /> : null}
        <History nodeId={record.node_id} calls={history} />
        {writer && record.status !== "revoked"
          ? (
            <section class="card" aria-labelledby="revoke-h">
              <h2 id="revoke-h">Revoke</h2>
              <p>
                Revoking ends the host's stream and refuses its credentials from then on; it must be
                enrolled again to come back.
              </p>
              <a class="button danger" href={`${hostPath(record.node_id)}/revoke`}>Revoke…</a>
            </section>
          )
          : null}
      </Page>,
    );
  });

  // The status, facts and connections, polled by the open page. 204 while nothing shown changed,
  // so an idle page costs a few bytes per poll and the browser keeps what it rendered.
  app.get("/hosts/:nodeId/live", async (c) => {
    const live = await liveView(deps, await load(c));
    c.header("cache-control", "no-store");
    if (c.req.query("v") === live.fingerprint) return c.body(null, 204);
    return c.html(<Live view={live} />);
  });

  // The command history, fetched again after a run (console.js fires `history-changed`).
  app.get("/hosts/:nodeId/history", async (c) => {
    const record = await load(c);
    c.header("cache-control", "no-store");
    return c.html(
      <History
        nodeId={record.node_id}
        calls={await deps.calls.history(record.node_id, HISTORY_SHOWN)}
      />,
    );
  });

  const changeTags = (change: typeof addTags) => async (c: Context<ConsoleEnv>) => {
    const operator = c.get("operator");
    requireWriter(operator, "change tags");
    const nodeId = c.req.param("nodeId")!;
    const form = await c.req.parseBody();
    const tags = String(form["tag"] ?? "").split(/[\s,]+/).filter(Boolean);
    let error: AegisError | undefined;
    try {
      await change(deps.db, operator, nodeId, tags);
    } catch (e) {
      error = toAegisError(e);
      // Not-found and refusals are the error page's; a bad tag is shown beside the field.
      if (error.code !== "INVALID_ARGUMENT") throw error;
    }
    if (!c.req.header("hx-request")) {
      if (error) throw error;
      return c.redirect(hostPath(nodeId), 303);
    }
    // htmx swaps only 2xx answers: the section comes back with the error in it.
    const record = await deps.daemons.require(nodeId, tenantsOf(operator));
    return c.html(<Tags record={record} writer csrf={c.get("csrf")} error={error} />);
  };
  app.post("/hosts/:nodeId/tags", changeTags(addTags));
  app.post("/hosts/:nodeId/tags/remove", changeTags(removeTags));

  // The REST exec route itself: same body, same NDJSON events, same checks. Its context type
  // names only `operator`, which the console's context carries too.
  app.post("/hosts/:nodeId/exec", (c) => {
    requireWriter(c.get("operator"), "run tools on hosts");
    return execRoute(c as unknown as Context<ApiEnv>, deps.actions);
  });

  app.get("/hosts/:nodeId/revoke", async (c) => {
    const operator = c.get("operator");
    requireWriter(operator, "revoke hosts");
    const record = await load(c);
    const name = displayName(record);
    return c.html(
      <Page title={`Revoke ${name}?`} section="hosts" operator={operator} csrf={c.get("csrf")}>
        <section class="card" aria-labelledby="confirm-h">
          <h2 id="confirm-h">This host will be revoked</h2>
          <dl class="facts">
            <dt>Name</dt>
            <dd>{record.name || "—"}</dd>
            <dt>Hostname</dt>
            <dd>{record.capabilities.hostname ?? "—"}</dd>
            <dt>Node id</dt>
            <dd class="mono">{record.node_id}</dd>
            <dt>Tenant</dt>
            <dd>{record.tenant_id}</dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={statusOf(record, deps)} />
            </dd>
          </dl>
          {record.status === "revoked" ? <p class="notice">This host is already revoked.</p> : (
            <>
              <p>
                Its stream ends now and its token and key are refused from then on, on every relay.
                Running commands are cut off. To bring it back, enroll it again.
              </p>
              <form method="post" action={`${hostPath(record.node_id)}/revoke`} class="row">
                <input type="hidden" name="_csrf" value={c.get("csrf")} />
                <button type="submit" class="danger">Revoke {name}</button>
                <a href={hostPath(record.node_id)}>Cancel</a>
              </form>
            </>
          )}
        </section>
      </Page>,
    );
  });

  app.post("/hosts/:nodeId/revoke", async (c) => {
    const operator = c.get("operator");
    requireWriter(operator, "revoke hosts");
    const record = await load(c);
    await deps.actions.revokeHost(asPrincipal(operator), record.node_id);
    return c.redirect(hostPath(record.node_id), 303);
  });
}

/** Whether the page shows controls: asked of requireWriter itself, so the rule lives in one place. */
function isWriter(operator: Operator): boolean {
  try {
    requireWriter(operator, "change hosts");
    return true;
  } catch {
    return false;
  }
}

function displayName(record: DaemonRecord): string {
  return record.name || record.capabilities.hostname || record.node_id;
}

function statusOf(record: DaemonRecord, deps: ConsoleDeps): string {
  return displayStatus(effectiveStatus(record, deps.heartbeatIntervalSecs, deps.clock()));
}

interface LiveView {
  record: DaemonRecord;
  status: string;
  connections: ConnectionRecord[];
  now: Date;
  fingerprint: string;
}

async function liveView(deps: ConsoleDeps, record: DaemonRecord): Promise<LiveView> {
  const now = deps.clock();
  const status = statusOf(record, deps);
  const connections = await connectionHistory(deps.db, record.node_id, CONNECTIONS_SHOWN);
  const auth = authView(record, now);
  // Everything Live renders, save the ages the browser keeps current by itself.
  const fingerprint = createHash("sha256").update(JSON.stringify([
    record,
    status,
    auth.state,
    connections,
  ])).digest("hex").slice(0, 16);
  return { record, status, connections, now, fingerprint };
}

function Live(props: { view: LiveView }) {
  const { record, status, connections, now, fingerprint } = props.view;
  const caps = record.capabilities;
  const auth = authView(record, now);
  const error = lastErrorView(record);
  return (
    <section
      id="host-live"
      aria-label="Status and facts"
      hx-get={`${hostPath(record.node_id)}/live?v=${fingerprint}`}
      hx-trigger={HOST_REFRESH}
      hx-target="this"
      hx-swap="outerHTML"
      data-fingerprint={fingerprint}
    >
      <div class="grid2">
        <div class="card">
          <h2>Status</h2>
          <dl class="facts">
            <dt>Status</dt>
            <dd aria-live="polite">
              <StatusBadge status={status} /> since <Timestamp at={record.status_since} />
            </dd>
            <dt>Last heartbeat</dt>
            <dd>
              <Age at={record.last_heartbeat_at} />
            </dd>
            <dt>Remote address</dt>
            <dd class="mono">{record.remote_addr ?? "—"}</dd>
            <dt>Relay</dt>
            <dd class="mono">{record.relay_id ?? "—"}</dd>
            <dt>Reconnects</dt>
            <dd>{record.reconnects}</dd>
            <dt>Credentials</dt>
            <dd>
              <span class={`chip auth-${auth.state}`}>{auth.state.replace("_", " ")}</span>{" "}
              {auth.detail}
            </dd>
            <dt>Token expires</dt>
            <dd>{record.token_expires_at ? <Timestamp at={record.token_expires_at} /> : "—"}</dd>
            <dt>Last error</dt>
            <dd>
              {error
                ? (
                  <>
                    {error.message}
                    {error.at ? <span class="muted">{` (${error.at})`}</span> : null}
                    {record.connect_failures > 0
                      ? (
                        <span class="muted">
                          {" · "}
                          {record.connect_failures} failed attempt
                          {record.connect_failures === 1 ? "" : "s"} before the last Hello
                        </span>
                      )
                      : null}
                  </>
                )
                : <span class="muted">none reported</span>}
            </dd>
          </dl>
        </div>
        <div class="card">
          <h2>Host</h2>
          <dl class="facts">
            <dt>Name</dt>
            <dd>{record.name || "—"}</dd>
            <dt>Node id</dt>
            <dd class="mono">{record.node_id}</dd>
            <dt>Tenant</dt>
            <dd>{record.tenant_id}</dd>
            <dt>Hostname</dt>
            <dd>{caps.hostname ?? "—"}</dd>
            <dt>OS/arch</dt>
            <dd>{caps.os ? `${caps.os}/${caps.arch ?? "?"}` : "—"}</dd>
            <dt>Agent version</dt>
            <dd>{caps.agent_version ?? "—"}</dd>
            <dt>Key fingerprint</dt>
            <dd class="mono">{record.key_fingerprint}</dd>
            <dt>Created</dt>
            <dd>
              <Timestamp at={record.created_at} />
            </dd>
          </dl>
        </div>
      </div>
      <div class="card">
        <h2>Capabilities and labels</h2>
        <dl class="facts">
          <dt>Local tools</dt>
          <dd>
            <Chips items={caps.local_tools ?? []} none="none" />
          </dd>
          <dt>Mount points</dt>
          <dd>
            <Chips items={caps.mount_points ?? []} none="none" />
          </dd>
          <dt>Concurrent calls</dt>
          <dd>{caps.max_concurrent_calls ?? "—"}</dd>
          <dt>Labels</dt>
          <dd>
            <Chips items={labelPairs(record.labels)} none="none" />
          </dd>
        </dl>
      </div>
      <div class="card">
        <h2>Connections</h2>
        {connections.length === 0
          ? <p class="muted">No connection recorded yet.</p>
          : (
            <table class="responsive">
              <TableHead
                columns={["Connected", "Ended", "Lasted", "Relay", "Remote address", "Agent"]}
              />
              <tbody>
                {connections.map((row) => (
                  <tr>
                    <td data-label="Connected">
                      <Timestamp at={row.connected_at} />
                    </td>
                    <td data-label="Ended">{ended(record, row)}</td>
                    <td data-label="Lasted">
                      {row.disconnected_at
                        ? duration(row.disconnected_at.getTime() - row.connected_at.getTime())
                        : "—"}
                    </td>
                    <td data-label="Relay" class="mono">{row.relay_id}</td>
                    <td data-label="Remote address" class="mono">{row.remote_addr ?? "—"}</td>
                    <td data-label="Agent">{row.agent_version ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
      </div>
    </section>
  );
}

/** A connection with no recorded end is either the live one or one whose relay died. */
function ended(record: DaemonRecord, row: ConnectionRecord) {
  if (row.disconnected_at) return <Timestamp at={row.disconnected_at} />;
  const current = record.status === "connected" && record.relay_id === row.relay_id &&
    record.status_since.getTime() === row.connected_at.getTime();
  return current
    ? <span class="chip">connected now</span>
    : <span class="muted">not recorded</span>;
}

function Tags(props: { record: DaemonRecord; writer: boolean; csrf: string; error?: AegisError }) {
  const { record, writer, csrf, error } = props;
  const action = `${hostPath(record.node_id)}/tags`;
  return (
    <section id="tags" class="card" aria-labelledby="tags-h">
      <h2 id="tags-h">Tags</h2>
      {error ? <ErrorBox message={error.message} hint={error.hint} /> : null}
      <div class="row">
        {record.tags.length === 0 ? <span class="muted">No tags.</span> : null}
        {record.tags.map((tag) =>
          writer
            ? (
              <form
                method="post"
                action={`${action}/remove`}
                hx-post={`${action}/remove`}
                hx-target="#tags"
                hx-swap="outerHTML"
                class="chip"
              >
                <input type="hidden" name="_csrf" value={csrf} />
                <input type="hidden" name="tag" value={tag} />
                {tag}{" "}
                <button type="submit" class="secondary" aria-label={`Remove tag ${tag}`}>
                  ×
                </button>
              </form>
            )
            : <span class="chip">{tag}</span>
        )}
      </div>
      {writer
        ? (
          <form
            method="post"
            action={action}
            hx-post={action}
            hx-target="#tags"
            hx-swap="outerHTML"
            class="row"
          >
            <input type="hidden" name="_csrf" value={csrf} />
            <label>
              New tag
              <input
                type="text"
                name="tag"
                required
                maxlength={MAX_TAG_LENGTH * 8}
                placeholder="web, prod:eu"
                autocomplete="off"
              />
            </label>
            <button type="submit">Add tag</button>
          </form>
        )
        : null}
    </section>
  );
}

function Run(props: { record: DaemonRecord }) {
  const action = `${hostPath(props.record.node_id)}/exec`;
  return (
    // No aria-labelledby here nor on the history: a section named "…command…" would also
    // answer to the label "Command" of the input people (and tests) look for.
    <section class="card">
      <h2>Run a command</h2>
      {/* console.js posts it as JSON and renders the NDJSON answer as it arrives. */}
      <form data-exec="run-out" method="post" action={action} class="row">
        <label>
          Command
          <input type="text" name="shell" required autocomplete="off" placeholder="uptime" />
        </label>
        <label>
          Timeout (s)
          <input type="number" name="timeout_secs" min={1} max={86400} value="30" />
        </label>
        <button type="submit">Run</button>
      </form>
      <p id="run-out-status" role="status" class="muted"></p>
      <pre class="output" id="run-out" aria-label="Output"></pre>
    </section>
  );
}

function History(props: { nodeId: string; calls: CallRecord[] }) {
  return (
    <section
      id="history"
      class="card"
      hx-get={`${hostPath(props.nodeId)}/history`}
      hx-trigger="history-changed from:body"
      hx-target="this"
      hx-swap="outerHTML"
    >
      <h2>Command history</h2>
      {props.calls.length === 0 ? <p class="muted">No commands yet.</p> : (
        <table class="responsive">
          <TableHead columns={["When", "Who", "What", "Status", "Exit", "Duration", "Output"]} />
          <tbody>
            {props.calls.map((call) => (
              <tr data-call-id={call.call_id}>
                <td data-label="When">
                  <Timestamp at={call.started_at} />
                </td>
                <td data-label="Who">{call.requested_by}</td>
                <td data-label="What">
                  <code>{call.summary || call.tool}</code>
                  {call.tool !== "cmd.run" ? <span class="muted">({call.tool})</span> : null}
                </td>
                <td data-label="Status">
                  {call.status}
                  {call.error ? <div class="muted">{call.error}</div> : null}
                </td>
                <td data-label="Exit">{call.exit_code ?? "—"}</td>
                <td data-label="Duration">
                  {call.duration_ms === null ? "—" : duration(call.duration_ms)}
                </td>
                <td data-label="Output">
                  {bytes(call.output_bytes)}
                  {call.truncated ? " (truncated)" : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const secs = ms / 1000;
  if (secs < 60) return `${secs.toFixed(1)} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${Math.floor(secs % 60)} s`;
  return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
