// Issue 10, item 6: plain HTTP/1.1 requests (REST, Connect) failed now and then when many ran in
// parallel. The listener hands each plaintext connection to an HTTP/1.1 server that never listens
// itself, and Deno's node:http took that for a server shutting down: it closed every connection
// right after its first response, which still said `Connection: keep-alive`, so a client reusing
// the pooled connection raced the close. And a response given before the request body was read
// (a 401, a 413) closed the connection without saying so, with a reset. Here many clients use
// kept-alive connections at once, with h2c connections arriving on the same port, and every
// request must get its answer.
import assert from "node:assert/strict";
import type * as http2 from "node:http2";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { connectH2, grpcFrame, h2Call } from "../security/wire.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * The clients run until MIN_REQUESTS answers came back and at least RUN_MS passed: a count, not a
 * rate, so a loaded machine makes the test slower, never red. MAX_RUN_MS bounds a controller that
 * stopped answering.
 */
const RUN_MS = 3000;
const MIN_REQUESTS = 1000;
const MAX_RUN_MS = 60_000;
const HTTP1_CLIENTS = 24;
const H2_CLIENTS = 3;
const REST_BODY_LIMIT = 4096;

interface Kind {
  name: string;
  expect: number;
  send: (n: number) => Promise<Response>;
}

Deno.test(
  `[${TEST_DB_KIND}] parallel kept-alive HTTP/1.1 requests beside h2c all get their answer`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      yaml: `limits:\n  max_rest_body_bytes: ${REST_BODY_LIMIT}`,
    });
    const sessions: http2.ClientHttp2Session[] = [];
    try {
      const token = await controller.operatorToken("team-a");
      const url = (path: string) => `${controller.endpoint}${path}`;
      const kinds: Kind[] = [
        { name: "GET /healthz", expect: 200, send: () => controller.api("/healthz") },
        {
          name: "GET /v1/edge/hosts",
          expect: 200,
          send: () => controller.api("/v1/edge/hosts", { token }),
        },
        {
          name: "POST enrollment token",
          expect: 201,
          send: (n) =>
            controller.api("/v1/edge/enrollment-tokens", {
              method: "POST",
              token,
              body: JSON.stringify({ name: `h1-${n}` }),
            }),
        },
        {
          name: "Connect JSON Health/Check",
          expect: 200,
          send: () =>
            fetch(url("/grpc.health.v1.Health/Check"), {
              method: "POST",
              headers: { "content-type": "application/json", "connect-protocol-version": "1" },
              body: "{}",
            }),
        },
        {
          // Refused before its body is read.
          name: "POST with a bad token",
          expect: 401,
          send: () =>
            controller.api("/v1/edge/enrollment-tokens", {
              method: "POST",
              token: "not-a-token",
              body: JSON.stringify({ name: "x".repeat(2000) }),
            }),
        },
        {
          name: "POST over the body limit",
          expect: 413,
          send: () =>
            controller.api("/v1/edge/enrollment-tokens", {
              method: "POST",
              token,
              body: JSON.stringify({ name: "x".repeat(2 * REST_BODY_LIMIT) }),
            }),
        },
        {
          // A streamed body goes out chunked, and a client cannot retry it on a fresh connection.
          name: "POST with a chunked body",
          expect: 201,
          send: (n) =>
            fetch(url("/v1/edge/enrollment-tokens"), {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
              body: ReadableStream.from(['{"name":', `"chunked-${n}"}`])
                .pipeThrough(new TextEncoderStream()),
            }),
        },
      ];

      const outcomes = new Map<string, number>();
      const count = (key: string) => {
        answered++;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      };
      const wrong: string[] = [];
      const started = Date.now();
      let answered = 0;
      const running = () => {
        const elapsed = Date.now() - started;
        return elapsed < MAX_RUN_MS && (elapsed < RUN_MS || answered < MIN_REQUESTS);
      };
      const http1Client = async (client: number) => {
        for (let n = client; running(); n++) {
          const kind = kinds[n % kinds.length];
          try {
            const response = await kind.send(n);
            const text = await response.text();
            count(`${kind.name}: ${response.status}`);
            if (response.status !== kind.expect) {
              wrong.push(`${kind.name}: ${response.status} ${text.slice(0, 120)}`);
            }
          } catch (error) {
            const cause = (error as Error).cause ?? error;
            count(`${kind.name}: failed`);
            wrong.push(`${kind.name}: ${String(cause).slice(0, 160)}`);
          }
        }
      };
      // gRPC over h2c on long-lived connections, and new h2c connections arriving throughout.
      // They stay open until the end: in Deno 2.9 a server can abort inside nghttp2 on a
      // client's GOAWAY (denoland/deno#36788), which is not what this test is about.
      const h2Client = async () => {
        const session = await connectH2(controller.port);
        sessions.push(session);
        while (running()) {
          const replies = await Promise.all(
            [0, 1, 2, 3].map(() =>
              h2Call(session, "/grpc.health.v1.Health/Check", {
                chunks: [grpcFrame(new Uint8Array())],
              })
            ),
          );
          for (const reply of replies) {
            count(`h2c Health/Check: ${reply.grpcStatus ?? reply.error}`);
            if (reply.grpcStatus !== 0) wrong.push(`h2c: ${JSON.stringify(reply)}`);
          }
        }
      };
      const h2Arrivals = async () => {
        while (running()) {
          const session = await connectH2(controller.port);
          sessions.push(session);
          const reply = await h2Call(session, "/grpc.health.v1.Health/Check", {
            chunks: [grpcFrame(new Uint8Array())],
          });
          count(`new h2c connection: ${reply.grpcStatus ?? reply.error}`);
          if (reply.grpcStatus !== 0) wrong.push(`new h2c: ${JSON.stringify(reply)}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };

      await Promise.all([
        ...Array.from({ length: HTTP1_CLIENTS }, (_, i) => http1Client(i)),
        ...Array.from({ length: H2_CLIENTS }, h2Client),
        h2Arrivals(),
      ]);
      console.log(Object.fromEntries([...outcomes].sort()));
      const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
      assert.ok(total >= MIN_REQUESTS, `only ${total} requests in ${MAX_RUN_MS} ms`);
      for (const kind of kinds) {
        assert.ok((outcomes.get(`${kind.name}: ${kind.expect}`) ?? 0) > 10, `few ${kind.name}`);
      }
      assert.equal(
        wrong.length,
        0,
        `${wrong.length} of ${total} requests went wrong, e.g.:\n${wrong.slice(0, 10).join("\n")}`,
      );
    } finally {
      for (const session of sessions) session.destroy();
      await controller.stop();
    }
  },
);
