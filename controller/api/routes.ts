// The operator REST API. Routes only translate HTTP to the domain services.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { EnrollmentService } from "../app/enrollment.ts";
import type { TokenAuthority } from "../app/tokens.ts";
import type { DaemonRepository } from "../app/daemons.ts";
import { hostView } from "./host_view.ts";
import { resolveTenant, tenantsOf } from "../app/operators.ts";
import type { RevocationService } from "../app/revocation.ts";
import type { FleetDispatcher } from "../app/fleet/dispatcher.ts";
import type { Queryable } from "../store/db.ts";
import { fleetRoutes } from "./fleet.ts";
import { type BootstrapDeps, bootstrapRoutes } from "./bootstrap_routes.ts";
import { isBehind, servedVersion } from "../app/release_lag.ts";
import { tagRoutes } from "./tags.ts";
import { approvedRoutes } from "./approved.ts";
import type { ApprovedPatterns } from "../app/approved_patterns.ts";
import type { ToolCallService } from "../app/tool_calls.ts";
import { callRoute, execRoute } from "./calls.ts";
import type { Clock } from "../app/clock.ts";
import { type ApiEnv, operatorsOnly, requireCaller } from "./auth.ts";
import { executionRoutes, scopeOf } from "./executions.ts";
import { auditRoutes } from "./audit.ts";
import type { AuditLog } from "../app/audit.ts";
import type { EdgeActions } from "../app/edge_actions.ts";
import type { ExecutionService } from "../app/executions.ts";
import { onApiError, refuseControlCharacters } from "./errors.ts";
import { parseBody } from "./validation.ts";
import { AegisError } from "../../shared/errors.ts";
import { DEFAULT_LIMITS } from "../server/limits.ts";
import { createConsole } from "../console/console.tsx";
import type { ConsoleDeps } from "../console/deps.ts";
import { type McpEndpointDeps, mountMcp } from "../mcp/endpoint.ts";

export interface ApiDeps {
  tokens: TokenAuthority;
  enrollment: EnrollmentService;
  /** Operator-approved trusted-enrollment patterns (absent: the routes answer 404). */
  approved?: ApprovedPatterns;
  daemons: DaemonRepository;
  calls: ToolCallService;
  revocation: RevocationService;
  /** The edge operations as executions, audited (REST, the console and MCP call these). */
  actions: EdgeActions;
  executions: ExecutionService;
  /** The tenants' hash-chained audit log (absent: no audit routes). */
  audit?: AuditLog;
  fleet: FleetDispatcher;
  db: Queryable;
  clock: Clock;
  heartbeatIntervalSecs: number;
  role: string;
  isServing: () => Promise<boolean>;
  log: (message: string) => void;
  /** Largest request body any route reads (limits.max_rest_body_bytes). */
  maxBodyBytes?: number;
  /** The unauthenticated install scripts and release files (issue 11). */
  bootstrap?: BootstrapDeps;
  /** The web console under /console (absent: no console). */
  console?: ConsoleDeps;
  /** The MCP endpoint under /mcp/v1 (absent: none). */
  mcp?: McpEndpointDeps;
}

const EnrollmentTokenRequest = z.object({
  name: z.string().max(128).optional(),
  tenant_id: z.string().min(1).max(128).optional(),
  ttl_secs: z.number().int().min(30).max(7 * 86400).optional(),
  /** Only hosts whose hostname matches this glob may redeem the token. */
  hostname_pattern: z.string().min(1).max(253).optional(),
}).strict();

export function createApi(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.onError(onApiError(deps.log));
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_LIMITS.max_rest_body_bytes;
  // Before any route (and before authentication) reads a byte: a declared length over the limit
  // is refused unread, a chunked body is cut off as it crosses it.
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) => {
        // On a kept-alive HTTP/1.1 connection the unread rest of the body would be parsed as
        // the next request; close the connection after this answer instead.
        if (c.env?.incoming?.httpVersionMajor === 1) c.header("Connection", "close");
        throw new AegisError(
          "PAYLOAD_TOO_LARGE",
          `the request body is larger than ${maxBodyBytes} bytes`,
        );
      },
    }),
  );
  app.use("*", async (c, next) => {
    refuseControlCharacters(c);
    c.set("log", deps.log);
    await next();
  });
  app.notFound((c) =>
    c.json({ error: { code: "NOT_FOUND", message: `no route ${c.req.method} ${c.req.path}` } }, 404)
  );

  app.get("/healthz", async (c) => {
    const serving = await deps.isServing();
    return c.json(
      { status: serving ? "SERVING" : "NOT_SERVING", role: deps.role },
      serving ? 200 : 503,
    );
  });
  app.get("/.well-known/jwks.json", (c) => c.json(deps.tokens.jwks));

  if (deps.mcp) mountMcp(app as unknown as Hono, deps.mcp);

  const v1 = new Hono<ApiEnv>();
  // Every caller is verified once here; the operator API below takes operators only, the
  // executions (and audit) routes consumer users too.
  v1.use("*", requireCaller(deps.tokens));
  v1.use("/edge/*", operatorsOnly);
  executionRoutes(v1, deps.executions);
  if (deps.audit) auditRoutes(v1, deps.audit);

  v1.post("/edge/enrollment-tokens", async (c) => {
    const body = await parseBody(c, EnrollmentTokenRequest);
    const issued = await deps.actions.issueEnrollmentToken(c.get("operator"), body, scopeOf(c));
    return c.json(issued, 201);
  });

  v1.get("/edge/hosts", async (c) => {
    const tenant = resolveTenant(c.get("operator"), c.req.query("tenant_id"));
    const hosts = await deps.daemons.list(tenant);
    // Each host's version against the release served at /releases/latest (null: none served).
    const served = await servedVersion(deps.bootstrap?.catalog);
    return c.json({
      release: served ? { version: served } : null,
      hosts: hosts.map((h) => ({
        ...hostView(h, deps),
        agent_version: h.capabilities.agent_version ?? null,
        behind_release: isBehind(h.capabilities.agent_version, served),
      })),
    });
  });

  v1.get("/edge/hosts/:nodeId", async (c) => {
    const host = await deps.daemons.require(c.req.param("nodeId"), tenantsOf(c.get("operator")));
    const history = await deps.calls.history(host.node_id, 20);
    return c.json({ ...hostView(host, deps), history });
  });

  v1.get("/edge/hosts/:nodeId/history", async (c) => {
    const host = await deps.daemons.require(c.req.param("nodeId"), tenantsOf(c.get("operator")));
    const limit = Math.min(500, Math.max(1, Number(c.req.query("limit") ?? 50) || 50));
    return c.json({ history: await deps.calls.history(host.node_id, limit) });
  });

  v1.post("/edge/hosts/:nodeId/exec", (c) => execRoute(c, deps.actions));

  v1.post(
    "/edge/hosts/:nodeId/revoke",
    async (c) =>
      c.json(await deps.actions.revokeHost(c.get("operator"), c.req.param("nodeId"), scopeOf(c))),
  );
  v1.post("/edge/hosts/:nodeId/calls", (c) => callRoute(c, deps.actions));

  fleetRoutes(v1, deps.fleet, deps.actions);
  tagRoutes(v1, { db: deps.db });
  if (deps.approved) approvedRoutes(v1, deps.approved);
  if (deps.bootstrap) bootstrapRoutes(app, deps.bootstrap, { console: Boolean(deps.console) });
  if (deps.console) {
    // "/console/" is the console's front door (links and redirects use it); a route mounted at
    // /console only answers "/console" itself.
    app.get("/console/", (c) => c.redirect("/console/hosts", 303));
    app.route("/console", createConsole(deps.console));
  }
  app.route("/v1", v1);
  return app;
}
