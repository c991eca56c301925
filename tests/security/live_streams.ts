// Helpers for the live-stream revocation tests: an enrolled host with its daemon, an operator's
// exec that would leave a marker file, and SQL straight on the test database (to play a lost
// notification or hold a row lock), which only PostgreSQL allows while a controller runs.
import assert from "node:assert/strict";
import postgres from "postgres";
import type { ControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { AGENT_MAIN, type Background, type Output, runDeno } from "../support/processes.ts";

export interface EnrolledHost {
  host: Host;
  nodeId: string;
  daemon: Background;
}

export interface HostSetup {
  /** Reorders the relays the daemon tries first. */
  endpoints?: string[];
  /** The daemon's heartbeat interval (the written config says 30). */
  heartbeatSecs?: number;
}

/** Enrolls a host through `via` and starts its daemon; waits for its stream. */
export async function enrollHost(
  via: ControllerProcess,
  hosts: Host[],
  setup: HostSetup = {},
): Promise<EnrolledHost> {
  const { host, nodeId } = await enrollNewHost(via);
  hosts.push(host);
  await editHostConfig(host, (text) => {
    if (setup.endpoints) {
      const list = setup.endpoints.map((e) => `    - ${e}\n`).join("");
      text = replaceOnce(text, / {2}endpoints:\n( {4}- .*\n)+/, `  endpoints:\n${list}`);
    }
    if (setup.heartbeatSecs) {
      const line = `heartbeat_interval_secs: ${setup.heartbeatSecs}`;
      text = replaceOnce(text, /heartbeat_interval_secs: \d+/, line);
    }
    return text;
  });
  const daemon = host.startDaemon();
  await daemon.waitFor(/stream connected/, 30_000);
  return { host, nodeId, daemon };
}

export async function editHostConfig(host: Host, edit: (text: string) => string): Promise<void> {
  const path = `${host.home}/.aegis/edge/aegis-config.yaml`;
  await Deno.writeTextFile(path, edit(await Deno.readTextFile(path)));
}

function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  assert.match(text, pattern, "the host config changed shape");
  return text.replace(pattern, replacement);
}

/** An operator's exec that creates `marker` on the host if it is ever delivered. */
export async function execMarker(
  via: ControllerProcess,
  target: EnrolledHost,
  marker: string,
): Promise<Output> {
  return await runDeno(AGENT_MAIN, [
    "edge",
    "exec",
    target.nodeId,
    "--timeout",
    "10s",
    "--",
    "touch",
    marker,
  ], {
    HOME: target.host.home,
    AEGIS_ENDPOINT: via.endpoint,
    AEGIS_TOKEN: await via.operatorToken("team-a", "operator"),
  });
}

export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** A direct connection to the test database, as another process (or a DBA) would have. */
export function sqlOn(dsn: string): postgres.Sql {
  return postgres(dsn, { max: 4, onnotice: () => {} });
}

/** What a revocation writes, without the notification that should tell the relays. */
export async function revokeSilently(
  sql: postgres.Sql | postgres.TransactionSql,
  nodeId: string,
): Promise<void> {
  await sql`UPDATE edge_daemons SET status = 'revoked', status_since = now()
              WHERE node_id = ${nodeId}`;
  await sql`INSERT INTO revoked_tokens (jti, node_id, reason, expires_at)
              SELECT token_jti, node_id, 'test', now() + interval '1 hour' FROM edge_daemons
               WHERE node_id = ${nodeId} AND token_jti IS NOT NULL
            ON CONFLICT (jti) DO NOTHING`;
}
