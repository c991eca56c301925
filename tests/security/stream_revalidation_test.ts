// A stream is only as good as the node's current record, even when nobody says the record
// changed: a revocation whose notification never arrived ends the stream within a heartbeat
// interval, and a relay whose LISTEN connection was cut checks every stream once it is back.
// Both write to the database behind the controller's back, which only PostgreSQL allows.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import type { Host } from "../support/host.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrollHost, execMarker, exists, revokeSilently, sqlOn } from "./live_streams.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: TEST_DB_KIND !== "postgres" };

async function withController(
  edge: string,
  body: (controller: ControllerProcess, hosts: Host[]) => Promise<void>,
): Promise<void> {
  const controller = await startControllerProcess({ edge });
  const hosts: Host[] = [];
  try {
    await body(controller, hosts);
  } finally {
    for (const host of hosts) await host.cleanup();
    await controller.stop();
  }
}

Deno.test(
  `[${TEST_DB_KIND}] a revocation whose notification was lost ends the stream within a heartbeat`,
  opts,
  () =>
    withController("heartbeat_interval_secs: 1", async (controller, hosts) => {
      // The daemon beats as often, so no silence watchdog ends the stream for another reason.
      const node = await enrollHost(controller, hosts, { heartbeatSecs: 1 });
      const sql = sqlOn(controller.db.dsn!);
      try {
        await revokeSilently(sql, node.nodeId); // no NOTIFY: as if it was lost
      } finally {
        await sql.end({ timeout: 5 });
      }
      // One interval (1 s) plus the time a loaded machine takes; never "some day".
      await node.daemon.waitFor(/was revoked/, 10_000);
      const marker = `${node.host.home}/delivered`;
      const out = await execMarker(controller, node, marker);
      assert.notEqual(out.code, 0, out.stdout);
      assert.equal(await exists(marker), false, "the call reached a revoked node");
    }),
);

Deno.test(
  `[${TEST_DB_KIND}] a relay checks every stream again once its LISTEN connection is back`,
  opts,
  // The default 30 s heartbeat: the periodic sweep is not what ends the stream here.
  () =>
    withController("heartbeat_interval_secs: 30", async (controller, hosts) => {
      const node = await enrollHost(controller, hosts);
      const sql = sqlOn(controller.db.dsn!);
      try {
        // The revocation's notification is sent while the relay is not listening: lost.
        await revokeSilently(sql, node.nodeId);
        const killed = await sql`
          SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
           WHERE datname = current_database() AND query ILIKE 'listen %'`;
        assert.ok(killed.length >= 1, "no LISTEN connection found");
      } finally {
        await sql.end({ timeout: 5 });
      }
      await node.daemon.waitFor(/was revoked/, 15_000);
      assert.match(controller.process.stderr, /listening again/);
      // The bus works again: a revocation sent now still reaches the relay.
      const second = await enrollHost(controller, hosts);
      const revoke = await controller.api(`/v1/edge/hosts/${second.nodeId}/revoke`, {
        method: "POST",
        token: await controller.operatorToken("team-a"),
      });
      assert.equal(revoke.status, 200, await revoke.text());
      await second.daemon.waitFor(/was revoked/, 10_000);
    }),
);
