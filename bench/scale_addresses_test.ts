import assert from "node:assert/strict";
import { deferGoawayReply } from "../shared/net/h2_goaway.ts";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { H2Session } from "../shared/net/h2_session.ts";
import { AegisError } from "../shared/errors.ts";
import { deal, MAX_PER_WORKER, sourceAddress } from "./scale_addresses.ts";

Deno.test("sourceAddress() gives every daemon of every worker its own loopback address", () => {
  const seen = new Set<string>();
  for (let w = 0; w < 6; w++) {
    for (let i = 0; i < 2_600; i++) {
      const address = sourceAddress(w, i);
      assert.match(address, /^127\.([1-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-5])\.\d{1,3}\.\d{1,3}$/);
      const [, second, third, fourth] = address.split(".").map(Number);
      assert.equal(second, w + 1);
      assert.ok(third <= 255 && fourth >= 1 && fourth <= 250, address);
      seen.add(address);
    }
  }
  assert.equal(seen.size, 6 * 2_600);
  assert.equal(sourceAddress(0, 0), "127.1.0.1");
  assert.equal(sourceAddress(0, 250), "127.1.1.1");
  assert.equal(sourceAddress(253, MAX_PER_WORKER - 1), "127.254.255.250");
});

Deno.test("sourceAddress() refuses a worker or index it has no address for", () => {
  assert.throws(() => sourceAddress(254, 0), AegisError);
  assert.throws(() => sourceAddress(0, MAX_PER_WORKER), AegisError);
  assert.throws(() => sourceAddress(-1, 0), AegisError);
  assert.throws(() => sourceAddress(0, 1.5), AegisError);
});

Deno.test("deal() spreads items round-robin and keeps each share within its addresses", () => {
  assert.deepEqual(deal([0, 1, 2, 3, 4], 2), [[0, 2, 4], [1, 3]]);
  assert.deepEqual(deal([0], 3), [[0], [], []]);
  assert.throws(() => deal([1], 0), AegisError);
  assert.throws(() => deal(new Array(MAX_PER_WORKER + 1).fill(0), 1), AegisError);
});

Deno.test("H2Session connects from the localAddress it is given", async () => {
  const server = http2.createServer();
  // As our listener does: Deno 2.9 may abort when it answers a GOAWAY inside nghttp2.
  server.on("session", (session) => deferGoawayReply(session));
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200 });
    stream.end(stream.session?.socket.remoteAddress ?? "");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const address = sourceAddress(3, 1_234);
  const session = new H2Session(`http://127.0.0.1:${port}`, { localAddress: address });
  try {
    const stream = await session.request("GET", "/", {}, {});
    stream.end();
    let text = "";
    stream.setEncoding("utf8");
    for await (const chunk of stream) text += chunk;
    assert.equal(text, address);
  } finally {
    session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
