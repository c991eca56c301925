// A controller away for two minutes: daemons back off up to the 60 s cap, never give up, and are
// all back within one capped wait of its return.
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { allConnected, assertAllAlive, sleep, startFleet, stopFleet } from "./daemons.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] controller SIGKILLed for 120 s: every daemon keeps trying and comes back`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const fleet = await startFleet(controller, 3);
    try {
      await allConnected(controller, fleet, 30_000);
      await controller.restart({ signal: "SIGKILL", downMs: 120_000 });
      const took = await allConnected(controller, fleet, 75_000);
      console.log(`SIGKILL, 120 s away: all Connected ${took} ms after the return`);
      await sleep(25_000);
      assertAllAlive(fleet);
      for (const member of fleet) {
        // The daemon kept trying through the outage: several refused attempts, none final.
        const refusals = member.daemon.stderr.match(/ECONNREFUSED/g)?.length ?? 0;
        if (refusals < 3) throw new Error(`only ${refusals} attempts:\n${member.daemon.stderr}`);
      }
    } finally {
      await stopFleet(fleet);
      await controller.stop();
    }
  },
);
