// `deno task demo`: the whole path on one machine with the embedded database. A controller, an
// operator token, an enrollment token, a host enrolled under a temporary HOME, its daemon
// running, and `aegis edge status` showing Connected. Ctrl-C stops everything (`--exit`: at once).
import { AGENT_MAIN, Background, CONTROLLER_MAIN, runDeno } from "../tests/support/processes.ts";

const exitAtOnce = Deno.args.includes("--exit");
const root = await Deno.makeTempDir({ prefix: "aegis-demo-" });
const dataDir = `${root}/controller`;
const hostHome = `${root}/host`;
await Deno.mkdir(hostHome);
const configPath = `${root}/aegis-config.yaml`;
const port = portIsFree(50056) ? 50056 : 0;
await Deno.writeTextFile(
  configPath,
  `cluster:\n  role: controller\n  cluster_grpc_port: ${port}\n  bind_address: 127.0.0.1\n`,
);

const say = (text: string) => console.log(text);
const step = (text: string) => say(`\n\x1b[1m▶ ${text}\x1b[0m`);

step(`Starting aegis-controller (embedded PGlite in ${dataDir})`);
const controller = new Background(CONTROLLER_MAIN, [
  "run",
  "--config",
  configPath,
  "--data-dir",
  dataDir,
], {});
const started = await controller.waitFor(/\{"port":(\d+),"endpoint":"([^"]+)"\}/, 60_000);
const endpoint = started[2];
say(`  listening at ${endpoint} (gRPC, gRPC-Web, Connect and REST on one port)`);

step("Minting an operator token (aegis-controller token create --tenant demo --role admin)");
/** `aegis-controller token create` for the demo's admin, plus `extra` (e.g. --login). */
async function createAdminToken(extra: string[] = []): Promise<string> {
  const out = await runDeno(CONTROLLER_MAIN, [
    "token",
    "create",
    ...extra,
    "--config",
    configPath,
    "--data-dir",
    dataDir,
    "--tenant",
    "demo",
    "--role",
    "admin",
  ]);
  if (out.code !== 0) await fail(`token create ${extra.join(" ")} failed:\n${out.stderr}`);
  return out.stdout.trim();
}
const operatorToken = await createAdminToken();
await Deno.writeTextFile(`${root}/operator.jwt`, operatorToken + "\n", { mode: 0o600 });

step("Issuing an enrollment token (POST /v1/edge/enrollment-tokens)");
const response = await fetch(`${endpoint}/v1/edge/enrollment-tokens`, {
  method: "POST",
  headers: { authorization: `Bearer ${operatorToken}`, "content-type": "application/json" },
  body: JSON.stringify({ name: "demo-host" }),
});
if (response.status !== 201) {
  await fail(`issuing failed: ${response.status} ${await response.text()}`);
}
const issued = await response.json();
say(`  ${issued.command.slice(0, 60)}…  (expires ${issued.expires_at})`);

step(`Enrolling a host whose HOME is ${hostHome}`);
const hostEnv = { HOME: hostHome };
const enrolled = await runDeno(AGENT_MAIN, [
  "edge",
  "enroll",
  issued.token,
  "--non-interactive",
  "--no-service",
], hostEnv);
say(enrolled.stdout.trimEnd());
if (enrolled.code !== 0) await fail(enrolled.stderr);

step("Starting the daemon (aegis edge run)");
const daemon = new Background(AGENT_MAIN, ["edge", "run"], hostEnv);
await daemon.waitFor(/stream connected/, 30_000);

step("aegis edge status");
let status = "";
for (let i = 0; i < 50 && !/status:\s+Connected/.test(status); i++) {
  status = (await runDeno(AGENT_MAIN, ["edge", "status"], hostEnv)).stdout;
  if (!/status:\s+Connected/.test(status)) await new Promise((r) => setTimeout(r, 200));
}
say(status.trimEnd());
const connected = /status:\s+Connected/.test(status);

if (exitAtOnce || !connected) {
  await shutdown();
  Deno.exit(connected ? 0 : 1);
}

// A one-time login link into the web console, signed in as the demo's admin.
const link = await createAdminToken(["--login", "--url", endpoint]);

say(`
The controller keeps running. Open the web console (a one-time login link, 15 minutes):
  ${link}
or try, in another terminal:
  curl -s -H "Authorization: Bearer $(cat ${root}/operator.jwt)" ${endpoint}/v1/edge/hosts
  HOME=${hostHome} deno run -A agent/main.ts edge status --output json
or point an MCP client at ${endpoint}/mcp/v1 with that token as its Bearer token.
Ctrl-C stops the daemon and the controller.`);
await new Promise<void>((resolve) => Deno.addSignalListener("SIGINT", resolve));
await shutdown();
Deno.exit(0);

async function shutdown() {
  await daemon.stop();
  await controller.stop();
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

async function fail(message: string): Promise<never> {
  console.error(`✖ ${message}`);
  await controller.stop();
  Deno.exit(1);
}

function portIsFree(candidate: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: candidate }).close();
    return true;
  } catch {
    return false;
  }
}
