// Add Edge Host: pick a tenant, optionally name the host (and bind the token to a hostname
// glob), Issue Token. The answer is what POST /v1/edge/enrollment-tokens answers, shown to be
// used: the enroll command (and its stdin form), the per-OS install one-liners, a QR code of the
// command, the time left, and a status line that follows the token from issued to enrolled to
// Connected. Issuing goes through EnrollmentService.issueToken like the REST call, so a readonly
// operator or a tenant the operator lacks is refused by the same checks.
import { asPrincipal } from "../app/identity.ts";
import type { Context, Hono } from "hono";
import { raw } from "hono/html";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import type { IssuedEnrollmentToken } from "../app/enrollment.ts";
import { type Operator, requireWriter, tenantsOf } from "../app/operators.ts";
import { displayStatus, effectiveStatus } from "../app/daemons.ts";
import type { ConsoleDeps } from "./deps.ts";
import type { ConsoleEnv } from "./session.ts";
import { ErrorBox, Page } from "./layout.tsx";
import { Select } from "./components.tsx";
import { qrSvg } from "./qr.ts";

/** How often the status line asks whether the host enrolled and connected. */
export const ENROLL_STATUS_REFRESH = "every 2s";

const NAME_MAX = 128;
const PATTERN_MAX = 253;
const TENANT_MAX = 128;
/** Enrollment token ids are random UUIDs (TokenAuthority.issueEnrollment). */
const JTI = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface IssueForm {
  tenant_id: string;
  name: string;
  hostname_pattern: string;
}

export function addHostPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get("/hosts/new", (c) => {
    const operator = c.get("operator");
    c.header("cache-control", "no-store");
    return c.html(
      <AddHostPage
        operator={operator}
        csrf={c.get("csrf")}
        form={{ tenant_id: operator.tenant_id, name: "", hostname_pattern: "" }}
      />,
    );
  });

  app.post("/hosts/new", async (c) => {
    const operator = c.get("operator");
    const htmx = c.req.header("hx-request") !== undefined;
    // Issued tokens are secrets: never kept by a cache.
    c.header("cache-control", "no-store");
    let form: IssueForm | undefined;
    try {
      form = parseIssueForm(await c.req.parseBody());
      const issued = await deps.actions.issueEnrollmentToken(asPrincipal(operator), {
        tenant_id: form.tenant_id,
        name: form.name,
        ttl_secs: deps.enrollmentTtlSecs,
        ...(form.hostname_pattern ? { hostname_pattern: form.hostname_pattern } : {}),
      });
      const result = <IssuedToken issued={issued} now={deps.clock()} />;
      if (htmx) return c.html(result);
      return c.html(
        <AddHostPage operator={operator} csrf={c.get("csrf")} form={form}>{result}</AddHostPage>,
      );
    } catch (error) {
      // htmx and JSON callers get the console's usual error answer (console.tsx); a plain form
      // post gets the page back with what was typed and why it was refused.
      const aegis = toAegisError(error);
      if (htmx || aegis.code === "INTERNAL") throw error;
      return c.html(
        <AddHostPage
          operator={operator}
          csrf={c.get("csrf")}
          form={form ?? { tenant_id: operator.tenant_id, name: "", hostname_pattern: "" }}
        >
          <ErrorBox message={aegis.message} hint={aegis.hint} />
        </AddHostPage>,
        aegis.httpStatus as 400 | 403 | 404 | 409 | 429,
      );
    }
  });

  app.get("/hosts/new/status/:jti", async (c) => {
    const jti = c.req.param("jti");
    if (!JTI.test(jti)) {
      throw new AegisError("INVALID_ARGUMENT", "that is not an enrollment token id");
    }
    c.header("cache-control", "no-store");
    return c.html(await enrollStatus(c, deps, jti));
  });
}

/** The form's fields as strings, trimmed and bounded like the REST API bounds them. */
function parseIssueForm(body: Record<string, unknown>): IssueForm {
  const field = (key: string, max: number): string => {
    const value = body[key] ?? "";
    if (typeof value !== "string") {
      throw new AegisError("INVALID_ARGUMENT", `${key} must be text`);
    }
    const trimmed = value.trim();
    if (trimmed.length > max) {
      throw new AegisError("INVALID_ARGUMENT", `${key} is longer than ${max} characters`);
    }
    return trimmed;
  };
  const form = {
    tenant_id: field("tenant_id", TENANT_MAX),
    name: field("name", NAME_MAX),
    hostname_pattern: field("hostname_pattern", PATTERN_MAX),
  };
  if (!form.tenant_id) throw new AegisError("INVALID_ARGUMENT", "choose a tenant");
  return form;
}

/** Why this operator may not add hosts (the service's own refusal), or undefined if they may. */
function writerRefusal(operator: Operator): AegisError | undefined {
  try {
    requireWriter(operator, "add edge hosts");
    return undefined;
  } catch (error) {
    if (error instanceof AegisError) return error;
    throw error;
  }
}

function AddHostPage(
  props: { operator: Operator; csrf: string; form: IssueForm; children?: unknown },
) {
  const { operator, form } = props;
  const refusal = writerRefusal(operator);
  return (
    <Page title="Add Edge Host" section="add" operator={operator} csrf={props.csrf}>
      {refusal
        ? (
          <div class="notice" role="note">
            {refusal.message}.{refusal.hint ? ` ${refusal.hint}` : ""}
          </div>
        )
        : (
          <>
            <p class="muted">
              Issue a one-time enrollment token, then run the command it gives on the host. The host
              shows up under Edge Hosts as soon as it enrolls.
            </p>
            <form
              class="card"
              method="post"
              action="/console/hosts/new"
              hx-post="/console/hosts/new"
              hx-target="#issued"
              hx-swap="innerHTML"
              hx-disabled-elt="find button[type=submit]"
            >
              <input type="hidden" name="_csrf" value={props.csrf} />
              <div class="row">
                <label>
                  Tenant
                  <Select
                    name="tenant_id"
                    value={form.tenant_id}
                    required
                    options={tenantsOf(operator).map((t) =>
                      [t, t === operator.tenant_id ? `${t} (your own)` : t] as const
                    )}
                  />
                </label>
                <label>
                  Name (optional)
                  <input
                    type="text"
                    name="name"
                    value={form.name}
                    maxlength={NAME_MAX}
                    placeholder="defaults to the host's hostname"
                    autocomplete="off"
                  />
                </label>
                <label>
                  Hostname pattern (optional)
                  <input
                    type="text"
                    name="hostname_pattern"
                    value={form.hostname_pattern}
                    maxlength={PATTERN_MAX}
                    placeholder="e.g. web-*.example.com"
                    autocomplete="off"
                    aria-describedby="pattern-help"
                  />
                </label>
              </div>
              <p id="pattern-help" class="muted">
                With a hostname pattern, only a host whose hostname matches it can use the token.
              </p>
              <button type="submit">Issue Token</button>
            </form>
          </>
        )}
      <div id="issued">{props.children}</div>
    </Page>
  );
}

/** mm:ss left until `expires` (what console.js keeps counting down in the browser). */
export function timeLeft(expires: Date, now: Date): string {
  const left = Math.max(0, Math.floor((expires.getTime() - now.getTime()) / 1000));
  if (left === 0) return "expired";
  return `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
}

function CopyBlock(props: { id: string; label: string; text: string }) {
  return (
    <div class="copyable">
      <h3 id={`${props.id}-label`}>{props.label}</h3>
      <pre class="command" id={props.id} aria-labelledby={`${props.id}-label`}>{props.text}</pre>
      <button
        type="button"
        class="secondary"
        data-copy={props.id}
        aria-label={`Copy: ${props.label}`}
      >
        Copy
      </button>
    </div>
  );
}

function IssuedToken(props: { issued: IssuedEnrollmentToken; now: Date }) {
  const { issued } = props;
  const expires = new Date(issued.expires_at);
  return (
    <section class="card" aria-labelledby="issued-title" data-expiry-scope="">
      <h2 id="issued-title">Enroll the host</h2>
      <p>
        A one-time token for tenant <strong>{issued.tenant_id}</strong>
        {issued.name
          ? (
            <>
              , host name <strong>{issued.name}</strong>
            </>
          )
          : null}
        {issued.hostname_pattern
          ? (
            <>
              , for hostnames matching <code>{issued.hostname_pattern}</code>
            </>
          )
          : null}. It expires in{" "}
        <span class="countdown" data-expires={issued.expires_at}>
          {timeLeft(expires, props.now)}
        </span>{" "}
        <span class="muted">(at {issued.expires_at.slice(0, 19).replace("T", " ")}Z)</span>.
      </p>
      <p>Run one of these on the host (or scan the code to take the command to it):</p>
      <div class="grid2">
        <div>
          <CopyBlock id="enroll-command" label="Enroll command" text={issued.command} />
          <CopyBlock
            id="enroll-command-stdin"
            label="Enroll command, token on standard input (kept out of ps)"
            text={issued.command_stdin}
          />
          {issued.install
            ? (
              <>
                <p class="muted">
                  Or, on a host without the agent, install it and enroll in one go:
                </p>
                <CopyBlock
                  id="install-linux"
                  label="Install and enroll: Linux"
                  text={issued.install.linux}
                />
                <CopyBlock
                  id="install-macos"
                  label="Install and enroll: macOS"
                  text={issued.install.macos}
                />
                <CopyBlock
                  id="install-windows"
                  label="Install and enroll: Windows (PowerShell)"
                  text={issued.install.windows}
                />
              </>
            )
            : null}
        </div>
        <div>
          <div class="qr" role="img" aria-label="QR code of the enroll command">
            {raw(qrSvg(issued.command))}
          </div>
        </div>
      </div>
      {/* The live region stays put while the line inside it replaces itself on each poll. */}
      <div role="status" aria-live="polite">
        <StatusLine jti={issued.jti} poll tone="notice">
          Waiting for the host to enroll…
        </StatusLine>
      </div>
    </section>
  );
}

/** The status line; while `poll`, it asks again every 2 s and replaces itself with the answer. */
function StatusLine(
  props: { jti: string; poll: boolean; tone: "notice" | "success" | "error"; children: unknown },
) {
  const url = `/console/hosts/new/status/${props.jti}`;
  return (
    <div
      id="enroll-status"
      class={props.tone}
      data-state={props.poll ? "waiting" : "done"}
      hx-get={props.poll ? url : undefined}
      hx-trigger={props.poll ? ENROLL_STATUS_REFRESH : undefined}
      hx-swap={props.poll ? "outerHTML" : undefined}
    >
      {props.children}
    </div>
  );
}

/** Where the token stands now: waiting, enrolled (waiting to connect), Connected, or over. */
async function enrollStatus(c: Context<ConsoleEnv>, deps: ConsoleDeps, jti: string) {
  const operator = c.get("operator");
  const now = deps.clock();
  const state = await deps.enrollment.tokenState(operator, jti);
  if (!state) {
    // Another tenant's token reads exactly like a missing one; an expired unused token is
    // pruned, so by then this is what remains to say.
    return (
      <StatusLine jti={jti} poll={false} tone="error">
        This enrollment token is not known (it expired unused, or it is not in your tenants).
      </StatusLine>
    );
  }
  if (!state.redeemed_at || !state.node_id) {
    if (new Date(state.expires_at).getTime() <= now.getTime()) {
      return (
        <StatusLine jti={jti} poll={false} tone="error">
          The token expired unused. Issue a new one to add the host.
        </StatusLine>
      );
    }
    return (
      <StatusLine jti={jti} poll tone="notice">
        Waiting for the host to enroll…
      </StatusLine>
    );
  }
  const nodeId = state.node_id;
  const record = await deps.daemons.get(nodeId);
  if (!record || !tenantsOf(operator).includes(record.tenant_id)) {
    return (
      <StatusLine jti={jti} poll={false} tone="error">
        The token was used by node {nodeId}, which is no longer registered.
      </StatusLine>
    );
  }
  const name = record.name || record.capabilities.hostname || nodeId;
  const link = <a href={`/console/hosts/${encodeURIComponent(nodeId)}`}>{name}</a>;
  const status = effectiveStatus(record, deps.heartbeatIntervalSecs, now);
  if (status === "connected") {
    return (
      <StatusLine jti={jti} poll={false} tone="success">
        {link} is {displayStatus(status)} <span class="mono">({nodeId})</span>.
      </StatusLine>
    );
  }
  if (status === "revoked") {
    return (
      <StatusLine jti={jti} poll={false} tone="error">
        {link} <span class="mono">({nodeId})</span> enrolled but is {displayStatus(status)}.
      </StatusLine>
    );
  }
  return (
    <StatusLine jti={jti} poll tone="notice">
      Enrolled as {link} <span class="mono">({nodeId})</span>, waiting for it to connect…
    </StatusLine>
  );
}
