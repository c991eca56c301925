// A real aegis-controller process on a free port, on PGlite or (with AEGIS_TEST_PG_DSN) on a
// fresh PostgreSQL database, plus the operator calls tests need.
import { Background, CONTROLLER_MAIN, runDeno } from "./processes.ts";
import { type TestDatabase, testDatabase } from "./db.ts";

export interface ControllerProcess {
  port: number;
  endpoint: string;
  dataDir: string;
  configPath: string;
  db: TestDatabase;
  process: Background;
  operatorToken(tenant: string, role?: string, tenants?: string[]): Promise<string>;
  issueEnrollment(
    tenant: string,
    body?: Record<string, unknown>,
  ): Promise<{ token: string; command: string }>;
  api(path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  /** Stops the process (SIGTERM unless told), stays away `downMs`, and starts it on the same port. */
  restart(options?: { signal?: Deno.Signal; downMs?: number }): Promise<void>;
  /** Stops the process and leaves it stopped (its database and data dir stay). */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Starts a stopped process again on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ControllerSetup {
  /**
   * AEGIS_TEST_FAULTS for this controller process only (never via Deno.env: tests in other files
   * run in the same test process, and in-process services read it too).
   */
  faults?: string;
  /** Extra YAML under `edge:` (e.g. "attest_rate_limit_per_min: 1000"). */
  edge?: string;
  /** Share another controller's database (for restarts or relays). */
  db?: TestDatabase;
  dataDir?: string;
  role?: "controller" | "relay-coordinator";
  port?: number;
  /** Relays that share a database share the signing key too. */
  signingKeyFile?: string;
  /** Extra YAML under `auth:` (e.g. external issuers). */
  auth?: string;
  publicEndpoint?: string;
  nodeName?: string;
  /** Serve TLS on the controller's own port (PEM files). */
  tls?: { cert: string; key: string };
  /** Extra top-level YAML sections, verbatim (e.g. "limits:\n  max_connections: 10"). */
  yaml?: string;
  /** cluster.ingress.trusted_proxies (CIDRs whose forwarding headers are believed). */
  trustedProxies?: string[];
}

export async function startControllerProcess(
  setup: ControllerSetup = {},
): Promise<ControllerProcess> {
  const db = setup.db ?? await testDatabase();
  const dataDir = setup.dataDir ?? await Deno.makeTempDir({ prefix: "aegis-ctl-" });
  const configPath = `${dataDir}/aegis-config.yaml`;
  const yaml = [
    "cluster:",
    `  role: ${setup.role ?? "controller"}`,
    "  bind_address: 127.0.0.1",
    ...(setup.nodeName ? [`  node_name: ${setup.nodeName}`] : []),
    ...(setup.tls
      ? ["  tls:", `    cert_file: "${setup.tls.cert}"`, `    key_file: "${setup.tls.key}"`]
      : []),
    ...(setup.publicEndpoint || setup.trustedProxies ? ["  ingress:"] : []),
    ...(setup.publicEndpoint ? [`    public_endpoint: "${setup.publicEndpoint}"`] : []),
    ...(setup.trustedProxies
      ? [`    trusted_proxies: ${JSON.stringify(setup.trustedProxies)}`]
      : []),
    ...(setup.signingKeyFile || setup.auth ? ["auth:"] : []),
    ...(setup.signingKeyFile ? [`  signing_key_file: "${setup.signingKeyFile}"`] : []),
    ...(setup.auth ? setup.auth.split("\n").map((l) => `  ${l}`) : []),
    ...(db.dsn ? ["postgres:", `  dsn: "${db.dsn}"`] : []),
    ...(setup.edge ? ["edge:", ...setup.edge.split("\n").map((l) => `  ${l}`)] : []),
    ...(setup.yaml ? [setup.yaml] : []),
  ].join("\n");
  await Deno.writeTextFile(configPath, yaml + "\n");

  let port = setup.port ?? 0;
  const launch = async () => {
    const proc = new Background(CONTROLLER_MAIN, [
      "run",
      "--config",
      configPath,
      "--data-dir",
      dataDir,
      "--port",
      String(port),
    ], {
      HOME: dataDir,
      ...(setup.faults ? { AEGIS_TEST_FAULTS: setup.faults } : {}),
    });
    const match = await proc.waitFor(/\{"port":(\d+)/, 30_000);
    port = Number(match[1]);
    return proc;
  };
  const handle: ControllerProcess = {
    port: 0,
    endpoint: "",
    dataDir,
    configPath,
    db,
    process: await launch(),
    async operatorToken(tenant, role = "admin", tenants = []) {
      const args = [
        "token",
        "create",
        "--config",
        configPath,
        "--data-dir",
        dataDir,
        "--tenant",
        tenant,
        "--role",
        role,
      ];
      if (tenants.length) args.push("--tenants", tenants.join(","));
      const out = await runDeno(CONTROLLER_MAIN, args, { HOME: dataDir });
      if (out.code !== 0) throw new Error(`token create failed: ${out.stderr}`);
      return out.stdout.trim();
    },
    async issueEnrollment(tenant, body = {}) {
      const token = await handle.operatorToken(tenant);
      const response = await handle.api("/v1/edge/enrollment-tokens", {
        method: "POST",
        token,
        body: JSON.stringify({ name: "test-host", ...body }),
      });
      if (response.status !== 201) {
        throw new Error(`issue failed: ${response.status} ${await response.text()}`);
      }
      return await response.json();
    },
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.token) headers.set("authorization", `Bearer ${init.token}`);
      if (init.body) headers.set("content-type", "application/json");
      return fetch(`http://127.0.0.1:${handle.port}${path}`, { ...init, headers });
    },
    async restart({ signal = "SIGTERM", downMs = 0 } = {}) {
      await handle.process.stop(signal);
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      handle.process = await launch();
    },
    kill(signal = "SIGTERM") {
      return handle.process.stop(signal);
    },
    async start() {
      handle.process = await launch();
    },
    async stop() {
      await handle.process.stop();
      if (!setup.db) await db.cleanup();
      if (!setup.dataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  handle.port = port;
  handle.endpoint = `http://127.0.0.1:${port}`;
  return handle;
}
