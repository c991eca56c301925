// The controller goes away and comes back (killed, or stopped gracefully), and every daemon
// reconnects by itself. Before the daemon owned its HTTP/2 sessions, each one died ~20 s after
// reconnecting ("Uncaught Error: The session has been destroyed" from a keepalive timer of the
// dead session); the quiet minute after each return covers several keepalive periods.
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { allConnected, assertAllAlive, sleep, startFleet, stopFleet } from "./daemons.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] controller SIGKILLed (back after 1 s and 20 s) and restarted gracefully: every daemon comes back, none exits`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const fleet = await startFleet(controller, 3);
    try {
      await allConnected(controller, fleet, 30_000);
      for (const downMs of [1_000, 20_000]) {
        await controller.restart({ signal: "SIGKILL", downMs });
        // Full jitter with a 60 s cap: after 20 s away the next try may be up to 60 s off.
        const took = await allConnected(controller, fleet, 75_000);
        console.log(`SIGKILL, ${downMs / 1000} s away: all Connected ${took} ms after the return`);
        await sleep(25_000); // past a keepalive period on the new sessions
        assertAllAlive(fleet);
      }
      // A graceful stop that lasts: daemons get GOAWAY with a spread delay, then find nobody.
      await controller.restart({ signal: "SIGTERM", downMs: 8_000 });
      const took = await allConnected(controller, fleet, 60_000);
      console.log(`SIGTERM, 8 s away: all Connected ${took} ms after the return`);
      await sleep(25_000);
      assertAllAlive(fleet);
    } finally {
      await stopFleet(fleet);
      await controller.stop();
    }
  },
);
