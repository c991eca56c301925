// The console as the console tests meet it: the real Hono app mounted at /console (where the
// controller mounts it, so redirects and form actions line up) over the real services on a test
// database (PGlite, or PostgreSQL with AEGIS_TEST_PG_DSN), and browsers signed in with real
// operator tokens that carry their session cookie and CSRF token. The EdgeHub has no streams
// unless a test opens one, so hosts are offline and no daemon is needed.
// Not a test file itself: the runner only picks up *_test.ts.
import { EdgeActions } from "../app/edge_actions.ts";
import { ExecutionService } from "../app/executions.ts";
import { SecurityContexts } from "../app/security_contexts.ts";
import { HostListings } from "../app/host_listing.ts";
import { Hono } from "hono";
import type { Db } from "../store/db.ts";
import { testDatabase } from "../../tests/support/db.ts";
import type { OperatorRole } from "../../shared/tokens/claims.ts";
import { type Clock, systemClock } from "../app/clock.ts";
import { ConsoleSessions } from "../app/console_sessions.ts";
import { DaemonRepository } from "../app/daemons.ts";
import { EdgeHub } from "../app/edge_sessions.ts";
import { EnrollmentService, type EnrollmentSettings } from "../app/enrollment.ts";
import { FleetDispatcher } from "../app/fleet/dispatcher.ts";
import { NodeAuthenticator } from "../app/node_auth.ts";
import { RateLimiter } from "../app/rate_limit.ts";
import { RevocationService } from "../app/revocation.ts";
import { loadOrCreateSigningKey } from "../app/signing_key.ts";
import { TokenAuthority } from "../app/tokens.ts";
import { ToolCallService } from "../app/tool_calls.ts";
import { createConsole } from "./console.tsx";
import { SESSION_COOKIE } from "./session.ts";

/** The origin the test browser is on; its POSTs say so, as a browser's do. */
export const CONSOLE_ORIGIN = "http://console.test";

export interface ConsoleOptions {
  /** The clock every service reads (a test that moves time passes its own). */
  clock?: Clock;
  heartbeatIntervalSecs?: number;
  /** Overrides of the enrollment settings (endpoint, TTLs, bootstrap URL). */
  enrollment?: Partial<EnrollmentSettings>;
  /** Attest attempts per minute the enrollment rate limiter allows. */
  attestPerMinute?: number;
}

export interface SignInOptions {
  /** Further tenants the operator may act in. */
  tenants?: string[];
  /** The token's subject; `<role>@<tenant>` unless told. */
  subject?: string;
}

/** A signed-in browser: its session cookie and CSRF token, and requests carrying them. */
export interface Browser {
  cookie: string;
  csrf: string;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  /** A form POST with exactly these fields: no CSRF token unless the fields or headers hold one. */
  post(
    path: string,
    fields: Record<string, string>,
    headers?: Record<string, string>,
  ): Promise<Response>;
  /** A form POST as the page's form sends it: with its hidden `_csrf` field. */
  submit(
    path: string,
    fields: Record<string, string>,
    headers?: Record<string, string>,
  ): Promise<Response>;
  /** What console.js sends for a JSON request: the body and the X-CSRF-Token header. */
  postJson(path: string, body: unknown): Promise<Response>;
}

export interface ConsoleHarness {
  db: Db;
  tokens: TokenAuthority;
  daemons: DaemonRepository;
  hub: EdgeHub;
  calls: ToolCallService;
  fleet: FleetDispatcher;
  enrollment: EnrollmentService;
  actions: EdgeActions;
  executions: ExecutionService;
  /** Everything the services logged. */
  logs: string[];
  signIn(tenant: string, role: OperatorRole, options?: SignInOptions): Promise<Browser>;
  /** Waits for background work (fleet runs, call history, connection log) and drops it all. */
  cleanup(): Promise<void>;
}

export async function consoleHarness(options: ConsoleOptions = {}): Promise<ConsoleHarness> {
  const clock = options.clock ?? systemClock;
  const heartbeatIntervalSecs = options.heartbeatIntervalSecs ?? 30;
  const settings: EnrollmentSettings = {
    publicEndpoint: "https://controller.test",
    enrollmentTtlSecs: 900,
    nodeTokenTtlSecs: 3600,
    clockSkewLeewaySecs: 60,
    ...options.enrollment,
  };
  const database = await testDatabase();
  const db = await database.open();
  const dir = await Deno.makeTempDir({ prefix: "aegis-console-" });
  const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/key.jwk`), "test", clock);
  const daemons = new DaemonRepository(db, clock);
  const auth = new NodeAuthenticator(db, tokens, clock);
  const logs: string[] = [];
  const log = (message: string) => logs.push(message);
  const hub = new EdgeHub({ auth, daemons, clock, relayId: "r1", heartbeatIntervalSecs, log });
  const calls = new ToolCallService(db, daemons, hub, "r1", clock);
  const fleet = new FleetDispatcher(db, calls, "r1", clock);
  const enrollment = new EnrollmentService(
    db,
    tokens,
    new RateLimiter(options.attestPerMinute ?? 100, 60_000),
    auth,
    settings,
    clock,
  );
  const sessions = new ConsoleSessions(db, tokens, clock);
  const revocation = new RevocationService(db, hub, clock);
  const executions = new ExecutionService(db, new SecurityContexts(), "r1", clock, log);
  const actions = new EdgeActions({
    calls,
    fleet,
    enrollment,
    revocation,
    daemons,
    executions,
    log,
  });
  const app = new Hono().route(
    "/console",
    createConsole({
      sessions,
      daemons,
      hostListings: new HostListings(db, heartbeatIntervalSecs, clock),
      enrollment,
      calls,
      revocation,
      fleet,
      actions,
      db,
      clock,
      heartbeatIntervalSecs,
      enrollmentTtlSecs: settings.enrollmentTtlSecs,
      log,
    }),
  );
  const request = (path: string, init: RequestInit) =>
    Promise.resolve(app.request(`${CONSOLE_ORIGIN}${path}`, init));

  const signIn = async (tenant: string, role: OperatorRole, who: SignInOptions = {}) => {
    const token = await tokens.issueOperator({
      subject: who.subject ?? `${role}@${tenant}`,
      tenantId: tenant,
      role,
      tenants: who.tenants ?? [],
      ttlSecs: 3600,
    });
    const session = await sessions.signInWithToken(token);
    const cookie = `${SESSION_COOKIE}=${session.id}`;
    // A browser's POST names its origin; the host header is what the middleware compares it to.
    const sent = { cookie, origin: CONSOLE_ORIGIN, host: new URL(CONSOLE_ORIGIN).host };
    const post = (path: string, fields: Record<string, string>, headers = {}) =>
      request(path, {
        method: "POST",
        headers: { ...sent, "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(fields).toString(),
      });
    return {
      cookie,
      csrf: session.csrf,
      get: (path, headers = {}) => request(path, { headers: { cookie, ...headers } }),
      post,
      submit: (path, fields, headers) => post(path, { _csrf: session.csrf, ...fields }, headers),
      postJson: (path, body) =>
        request(path, {
          method: "POST",
          headers: { ...sent, "content-type": "application/json", "x-csrf-token": session.csrf },
          body: JSON.stringify(body),
        }),
    } satisfies Browser;
  };

  const cleanup = async () => {
    await actions.idle();
    await fleet.idle();
    await executions.drain();
    await calls.flushHistory();
    await daemons.drain();
    await database.cleanup();
    await Deno.remove(dir, { recursive: true });
  };
  return {
    db,
    tokens,
    daemons,
    hub,
    calls,
    fleet,
    enrollment,
    actions,
    executions,
    logs,
    signIn,
    cleanup,
  };
}

/** Runs `fn` with a fresh console and cleans up after it, whatever it does. */
export async function withConsole(
  options: ConsoleOptions,
  fn: (h: ConsoleHarness) => Promise<void>,
): Promise<void> {
  const h = await consoleHarness(options);
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}
