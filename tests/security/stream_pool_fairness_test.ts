// Review finding 3: the global pool of unauthenticated ConnectEdge streams was a lockout lever:
// a few addresses (64 IPv6 /64s) kept it full and every reconnecting daemon was refused. Now a
// wider prefix (IPv4 /24, IPv6 /48) has a quota of its own, and a full pool makes room for a
// newcomer from a less crowded prefix by evicting the crowd's oldest stream. Loopback gives us
// many addresses: the clients bind to 127.1.0.x, 127.2.0.x and 127.3.0.1.
import assert from "node:assert/strict";
import type * as http2 from "node:http2";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { connectH2, h2Call, RPC } from "./wire.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] a full unauthenticated-stream pool still admits a daemon from a fresh prefix`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      yaml: [
        "limits:",
        "  edge_auth_deadline_ms: 30000",
        "  unauthenticated_streams_per_address: 16",
        "  unauthenticated_streams_per_prefix: 32",
        "  unauthenticated_streams_max: 64",
      ].join("\n"),
    });
    const sessions: http2.ClientHttp2Session[] = [];
    const open = async (address: string, count: number, timeoutMs: number) => {
      const session = await connectH2(controller.port, address);
      sessions.push(session);
      return Array.from(
        { length: count },
        () => h2Call(session, RPC.connectEdge, { keepOpen: true, timeoutMs }),
      );
    };
    try {
      // The crowd: two /24s, two addresses each, 16 streams per address: the whole pool.
      const crowd = (await Promise.all(
        ["127.1.0.1", "127.1.0.2", "127.2.0.1", "127.2.0.2"].map((a) => open(a, 16, 8000)),
      )).flat();
      await delay(1500);
      // A third address in a full /24 is refused by the prefix quota, whatever its own count.
      const [sameSlash24] = await open("127.1.0.3", 1, 3000);
      // The daemon, from a prefix holding nothing: admitted (still open, waiting for a Hello).
      const [daemon] = await open("127.3.0.1", 1, 3000);
      const [neighbour, daemonReply] = await Promise.all([sameSlash24, daemon]);
      assert.equal(neighbour.grpcStatus, 8, JSON.stringify(neighbour));
      assert.match(neighbour.grpcMessage ?? "", /127\.1\.0\.0\/24/);
      assert.equal(
        daemonReply.error,
        "timeout",
        `the daemon was refused: ${JSON.stringify(daemonReply)}`,
      );
      const crowdReplies = await Promise.all(crowd);
      const evicted = crowdReplies.filter((r) => r.grpcStatus === 8).length;
      assert.equal(evicted, 1, JSON.stringify(crowdReplies.filter((r) => r.grpcStatus === 8)));
      assert.equal(crowdReplies.filter((r) => r.error === "timeout").length, 63);
    } finally {
      for (const session of sessions) session.destroy();
      await controller.stop();
    }
  },
);

function delay(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
