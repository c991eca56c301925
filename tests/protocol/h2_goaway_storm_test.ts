// A client that ends its HTTP/2 session with session.close() sends GOAWAY, and every CLI call does
// that. Deno 2.9's node:http2 answered a peer's GOAWAY from inside nghttp2's receive pass, and about
// one such session in a thousand then aborted the whole controller in nghttp2
// (`find_stream_on_goaway_func: Assertion stream->closed_next == NULL`, or a segfault): anyone
// who could connect could kill it. Here three clients open session after session, each with four
// calls, then close it; the controller must live through it and still answer.
import assert from "node:assert/strict";
import type * as http2 from "node:http2";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { connectH2, h2Call } from "../security/wire.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const RUN_MS = 15_000;
const CLIENTS = 6;
const CALLS_PER_SESSION = 4;
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const EMPTY_FRAME = new Uint8Array(5);

Deno.test(
  `[${TEST_DB_KIND}] sessions closed with GOAWAY by the thousand do not abort the controller`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    let exited: Deno.CommandStatus | undefined;
    controller.process.child.status.then((status) => exited = status);
    try {
      const deadline = Date.now() + RUN_MS;
      let sessions = 0;
      const client = async () => {
        while (Date.now() < deadline && !exited) {
          let session: http2.ClientHttp2Session;
          try {
            session = await connectH2(controller.port);
          } catch {
            return; // the controller is gone: the check below says so
          }
          const calls = [];
          for (let i = 0; i < CALLS_PER_SESSION; i++) {
            calls.push(h2Call(session, HEALTH_CHECK, { chunks: [EMPTY_FRAME], timeoutMs: 5000 }));
          }
          await Promise.all(calls);
          session.close();
          sessions++;
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, client));
      console.log(`${sessions} sessions closed`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(
        exited,
        undefined,
        `controller died after ${sessions} sessions: ${controller.process.stderr.slice(-500)}`,
      );
      assert.ok(sessions > 300, `only ${sessions} sessions in ${RUN_MS} ms`);
      const health = await controller.api("/healthz");
      assert.equal(health.status, 200);
      await health.body?.cancel();
    } finally {
      await controller.stop();
    }
  },
);
