// Revoking a node while its daemon reconnects, with two relays on one PostgreSQL: afterwards no
// stream of the node survives on either relay, and an operator's call is refused and never
// reaches the host. The race is made to happen every time rather than sometimes: the test holds
// the node's row while the daemon's Hello is between its token check and its "connected" update,
// revokes in that window, lets the relays hear of it first, and only then commits. On a relay
// that checks before it registers, the drop finds nothing and the late update registers a stream
// of a revoked node.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import type { Host } from "../support/host.ts";
import { eventually, freePort } from "../support/processes.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { enrollHost, execMarker, exists, revokeSilently, sqlOn } from "./live_streams.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: TEST_DB_KIND !== "postgres" };

Deno.test(
  `[${TEST_DB_KIND}] a node revoked while it reconnects keeps no stream`,
  opts,
  async () => {
    const db = await testDatabase();
    const shared = await Deno.makeTempDir({ prefix: "aegis-race-" });
    const [p1, p2] = [freePort(), freePort()];
    const endpoints = [`http://127.0.0.1:${p1}`, `http://127.0.0.1:${p2}`];
    const common = {
      db,
      signingKeyFile: `${shared}/signing-key.jwk`,
      publicEndpoint: endpoints.join(","),
      role: "relay-coordinator" as const,
      edge: "attest_rate_limit_per_min: 100",
    };
    const relays: ControllerProcess[] = [];
    const hosts: Host[] = [];
    const sql = sqlOn(db.dsn ?? "");
    try {
      relays.push(await startControllerProcess({ ...common, port: p1, nodeName: "relay-1" }));
      relays.push(await startControllerProcess({ ...common, port: p2, nodeName: "relay-2" }));
      for (const round of [0, 1, 2]) {
        // Rounds alternate the relay the daemon reconnects to.
        const order = round % 2 === 0 ? endpoints : [...endpoints].reverse();
        const node = await enrollHost(relays[0], hosts, { endpoints: order });
        await node.daemon.stop();
        const marker = `${node.host.home}/delivered`;

        await sql.begin(async (tx) => {
          await tx`SELECT 1 FROM edge_daemons WHERE node_id = ${node.nodeId} FOR UPDATE`;
          const daemon = node.host.startDaemon();
          node.daemon = daemon;
          // The Hello passed its token check and now waits on our lock to mark the node connected.
          await eventually(
            async () => {
              const waiting = await sql`
            SELECT 1 FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%reconnects = reconnects%'`;
              return waiting.length > 0 || undefined;
            },
            "the daemon's Hello to wait on the row",
            30_000,
          );
          await revokeSilently(tx, node.nodeId);
          // The relays hear of the revocation before the Hello's update returns.
          await sql`SELECT pg_notify('aegis_edge_bus', ${
            JSON.stringify({ to: "*", kind: "revoked", node_id: node.nodeId, overlap_ms: 0 })
          })`;
          await new Promise((resolve) => setTimeout(resolve, 300));
        });

        await node.daemon.waitFor(/was revoked/, 15_000);
        for (const relay of relays) {
          const token = await relay.operatorToken("team-a");
          const view = await relay.api(`/v1/edge/hosts/${node.nodeId}`, { token });
          assert.equal((await view.json()).status, "Revoked");
          const out = await execMarker(relay, node, marker);
          assert.notEqual(out.code, 0, `round ${round}: exec via a relay succeeded: ${out.stdout}`);
          assert.match(out.stderr, /revoked/i, out.stderr);
        }
        assert.equal(await exists(marker), false, `round ${round}: a call reached a revoked node`);
      }
    } finally {
      await sql.end({ timeout: 5 });
      for (const host of hosts) await host.cleanup();
      for (const relay of relays) await relay.process.stop().catch(() => {});
      await db.cleanup();
      await Deno.remove(shared, { recursive: true });
      for (const relay of relays) {
        await Deno.remove(relay.dataDir, { recursive: true }).catch(
          () => {},
        );
      }
    }
  },
);
