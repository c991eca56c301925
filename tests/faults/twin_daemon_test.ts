// Two daemons for one host (`aegis edge run` by hand beside the service): the second waits for
// the first instead of taking its stream, being replaced in turn, and trading it back and forth.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrollNewHost } from "../support/host.ts";
import { sleep } from "./daemons.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] a second daemon for the same host waits for the first, then takes over`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host } = await enrollNewHost(controller);
    try {
      const first = host.startDaemon();
      await first.waitFor(/stream connected/);
      const second = host.startDaemon();
      await second.waitFor(/another aegis edge daemon is running for this host/);
      await sleep(3_000);
      assert.doesNotMatch(second.stderr, /stream connected/);
      assert.doesNotMatch(first.stderr, /goaway|REPLACED/, "the first stream was never replaced");
      await first.stop();
      await second.waitFor(/stream connected/, 20_000);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
