// Soak: the controller through 10,000 authenticated ConnectEdge streams opened and closed. The
// streams come from this process, several at a time, each one as a daemon opens it (the daemon's
// own EdgeConnection: opened, a sealed Hello, HelloAck) and then closed by the client; every tenth
// one on a fresh HTTP/2 connection. Each costs the controller what a real reconnect does: a
// session in the hub, a watchdog, admission bookkeeping, connection tracking, two database
// updates. Anything left behind per stream or connection shows as resident memory or file
// descriptors that grow with the count.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { createNodeClient, type NodeClient } from "../../agent/client/node_client.ts";
import { EdgeConnection } from "../../agent/daemon/connection.ts";
import { parseEdgeConfig } from "../../shared/config/edge_config.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import {
  enrollOne,
  FLEET_FROM_ONE_ADDRESS,
  issueTokens,
  type SimulatedNode,
} from "../../bench/support.ts";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { eventually } from "../support/processes.ts";
import {
  collectedSample,
  fdChanges,
  fdKinds,
  HAS_PROC,
  type Inspector,
  mib,
  reopenWithInspector,
} from "./support.ts";

const OPENS = 10_000;
const WARM_UP = 2_000;
const PARALLEL = 8;
/** Streams per HTTP/2 connection before the client opens a fresh one. */
const PER_CONNECTION = 10;
const MAX_RSS_GROWTH = 0.10;
const MAX_FD_GROWTH = 5;
const COLLECT_EVERY = 1_000;

Deno.test({
  name:
    `[${TEST_DB_KIND}] soak: the controller through ${OPENS} stream opens and closes keeps its memory and file descriptors`,
  // RSS and open descriptors are read from /proc: Linux only.
  ignore: !HAS_PROC,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const controller = await startControllerProcess({
      edge: "attest_rate_limit_per_min: 100000",
      yaml: FLEET_FROM_ONE_ADDRESS,
    });
    const clients = new Set<NodeClient>();
    let inspector: Inspector | undefined;
    try {
      const endpoint = parseEndpoint(controller.endpoint);
      const enroller = await createNodeClient(endpoint);
      clients.add(enroller);
      const nodes: SimulatedNode[] = [];
      for (const token of await issueTokens(controller, PARALLEL, "soak")) {
        nodes.push(await enrollOne(enroller, token));
      }
      enroller.close();
      const config = parseEdgeConfig(`cluster:\n  endpoints: ["${controller.endpoint}"]\n`);
      // The same controller again, with its inspector open: the test runs its collector before
      // each reading (see Inspector in ./support.ts).
      inspector = await reopenWithInspector(controller);
      const pid = controller.process.child.pid;
      const databaseFiles = `${controller.dataDir}/pglite/`;

      let opened = 0;
      /** Opens and closes streams until `opened` reaches `until`, PARALLEL at a time. */
      const run = (until: number) =>
        Promise.all(nodes.map(async (node) => {
          let client: NodeClient | undefined;
          let onClient = 0;
          try {
            while (opened < until) {
              opened++;
              // The collector runs now and then, as in the daemon soak (see COLLECT_EVERY there).
              if (opened % COLLECT_EVERY === 0) await inspector!.collect();
              if (!client || onClient === PER_CONNECTION) {
                client?.close();
                if (client) clients.delete(client);
                client = await createNodeClient(endpoint);
                clients.add(client);
                onClient = 0;
              }
              onClient++;
              const stream = await EdgeConnection.open(client, endpoint, node, config, hostname());
              assert.equal(stream.helloAck.nodeId, node.nodeId);
              stream.close();
            }
          } finally {
            client?.close();
            if (client) clients.delete(client);
          }
        }));

      await run(WARM_UP);
      const warm = await collectedSample(pid, inspector);
      const warmFds = fdKinds(pid);
      const started = performance.now();
      await run(OPENS);
      const seconds = (performance.now() - started) / 1000;
      const bound = warm.rssKiB * (1 + MAX_RSS_GROWTH);
      const end = await collectedSample(pid, inspector);
      const endFds = fdKinds(pid);
      const growth = (end.rssKiB - warm.rssKiB) / warm.rssKiB;
      console.log(
        `controller soak [${TEST_DB_KIND}]: ${OPENS - WARM_UP} streams after warm-up in ` +
          `${seconds.toFixed(1)} s (${((OPENS - WARM_UP) / seconds).toFixed(0)}/s), ` +
          `${PARALLEL} at a time, ${PER_CONNECTION} per HTTP/2 connection`,
      );
      console.log(
        `  fds by kind, warm-up → end:\n${fdChanges(warmFds, endFds)}\n` +
          `  RSS after ${WARM_UP}: ${mib(warm.rssKiB)}, at the end: ${mib(end.rssKiB)} ` +
          `(${growth >= 0 ? "+" : ""}${(growth * 100).toFixed(1)}%); fds ${warm.fds} → ${end.fds}`,
      );

      assert.ok(
        end.rssKiB <= bound,
        `RSS went from ${mib(warm.rssKiB)} to ${mib(end.rssKiB)} over ${OPENS - WARM_UP} streams`,
      );
      // PGlite opens the database's relation and WAL files as queries need them (PostgreSQL's
      // own descriptor cache, bounded by max_files_per_process): those are not per stream.
      const own = (kinds: Map<string, number>) =>
        [...kinds].reduce((n, [kind, count]) => kind.startsWith(databaseFiles) ? n : n + count, 0);
      assert.ok(
        own(endFds) <= own(warmFds) + MAX_FD_GROWTH,
        `open fds (besides the database's files) went from ${own(warmFds)} to ${own(endFds)}:\n` +
          fdChanges(warmFds, endFds),
      );
      // Every stream was real to the controller (each Hello after a node's first counts one
      // reconnect), and every one was released: no host is left Connected.
      const token = await controller.operatorToken("soak", "readonly");
      const hosts = await eventually(
        async () => {
          const list = (await (await controller.api("/v1/edge/hosts", { token })).json()).hosts;
          return list.every((h: { status: string }) => h.status === "Disconnected")
            ? list as { reconnects: number }[]
            : undefined;
        },
        "every host Disconnected",
        10_000,
      );
      const reconnects = hosts.reduce((sum, h) => sum + h.reconnects, 0);
      assert.equal(reconnects, OPENS - PARALLEL);
    } finally {
      inspector?.close();
      for (const client of clients) client.close();
      await controller.stop();
    }
  },
});
