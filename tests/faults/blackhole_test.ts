// The network path between a daemon and the controller turns into a blackhole for two minutes
// (nothing arrives either way, no FIN, no reset: a dead NAT entry, a pulled cable, a firewall
// that drops) and then heals. Neither side gets a socket event, so each must notice on its own:
// the daemon by its keepalive PING (one sent after keepalive_interval_secs without a byte, and
// unanswered for keepalive_timeout_secs), the controller by heartbeats missing for three
// intervals. After heal the daemon is back by itself and takes calls; it never exited.
import assert from "node:assert/strict";
import { TEST_DB_KIND } from "../support/db.ts";
import { eventually } from "../support/processes.ts";
import {
  allConnected,
  assertAllAlive,
  hostStatus,
  sleep,
  startFleet,
  stopFleet,
  withEdge,
} from "./daemons.ts";
import { assertCallWorks, loggedAt, proxiedController, statusWithin } from "./support.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const BLACKHOLE_MS = 120_000;
/** Lowered from the default 30 s so three missed heartbeats fit the test; the host's own setting. */
const HEARTBEAT_SECS = 5;
/** The edge config default (edge.keepalive_interval_secs), left as it is. */
const KEEPALIVE_SECS = 20;
/** What timers, polling and a database write may add to a deadline on a busy 2-core machine. */
const SLACK_MS = 3_000;

Deno.test(
  `[${TEST_DB_KIND}] a 2-minute blackhole: both sides notice in time, the daemon returns by itself and never exits`,
  opts,
  async () => {
    const { proxy, controller, stop } = await proxiedController();
    const fleet = await startFleet(
      controller,
      1,
      withEdge({ heartbeat_interval_secs: HEARTBEAT_SECS }),
    );
    const [member] = fleet;
    try {
      const token = await controller.operatorToken("team-a", "readonly");
      await allConnected(controller, fleet, 30_000);
      // A heartbeat round trip on the stream first: the blackhole hits a stream in steady state.
      await member.daemon.waitFor(/stream connected/);
      await sleep(HEARTBEAT_SECS * 1000 + 500);
      assert.ok(proxy.stats.bytesUp > 0 && proxy.stats.bytesDown > 0, "the daemon uses the proxy");

      const start = Date.now();
      proxy.blackhole();
      const controllerMs = await statusWithin(
        controller,
        member.nodeId,
        token,
        "Disconnected",
        start,
        60_000,
      );
      const failedAt = await eventually(
        () =>
          Promise.resolve(loggedAt(member.daemon.stderr, /^stream to \S+ (failed|ended)/, start)),
        "the daemon to log that its stream failed",
        60_000,
      );
      const daemonMs = failedAt - start;
      console.log(
        `blackhole noticed by the daemon after ${daemonMs} ms, by the controller after ${controllerMs} ms`,
      );
      // Silence began at most one heartbeat before the blackhole; three intervals of it end the
      // stream on the controller.
      assert.ok(
        controllerMs <= 3 * HEARTBEAT_SECS * 1000 + SLACK_MS,
        `the controller took ${controllerMs} ms to mark the host Disconnected`,
      );
      // Within two keepalive periods. (The design needs one: a PING goes out a keepalive
      // interval after the last byte read, before the blackhole, and its timeout is shorter.)
      assert.ok(
        daemonMs <= 2 * KEEPALIVE_SECS * 1000 + SLACK_MS,
        `the daemon noticed after ${daemonMs} ms:\n${member.daemon.stderr}`,
      );

      await sleep(start + BLACKHOLE_MS - Date.now());
      // Attempts made during the blackhole got through to nothing: still Disconnected.
      assert.equal(await hostStatus(controller, member.nodeId, token), "Disconnected");
      const attempts = member.daemon.stderr.match(/stream to \S+ failed/g)?.length ?? 0;
      assert.ok(
        attempts >= 2,
        `the daemon kept trying during the blackhole:\n${member.daemon.stderr}`,
      );
      assertAllAlive(fleet);

      const healed = Date.now();
      proxy.pass();
      // Full jitter, capped at 60 s: after two minutes of failures the next try may be that far.
      const reconnectMs = await statusWithin(
        controller,
        member.nodeId,
        token,
        "Connected",
        healed,
        75_000,
      );
      const daemonBack = loggedAt(member.daemon.stderr, /^✔ stream connected/, healed);
      assert.ok(daemonBack, "the daemon logged its new stream");
      console.log(
        `after heal: Connected on the controller in ${reconnectMs} ms, stream connected on the ` +
          `daemon in ${daemonBack - healed} ms (${attempts} failed attempts before)`,
      );
      await assertCallWorks(controller, member.nodeId);
      assertAllAlive(fleet);
    } finally {
      await stopFleet(fleet);
      await stop();
    }
  },
);
