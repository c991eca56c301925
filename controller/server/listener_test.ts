// The plaintext listener's HTTP/1.1 side, byte by byte: kept-alive connections, answers given
// before the body was read, and the header deadline.
import assert from "node:assert/strict";
import * as net from "node:net";
import { listen, type Listener } from "./listener.ts";
import { LimitsSchema } from "./limits.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Reads bodies through, except on /refuse, which answers 401 without reading a byte. */
function start(limits = {}): Promise<Listener> {
  return listen({
    host: "127.0.0.1",
    port: 0,
    limits: LimitsSchema.parse(limits),
    handler: (req, res) => {
      if (req.url === "/refuse") {
        res.writeHead(401, { "content-type": "text/plain", "content-length": "2" });
        res.end("no");
        return;
      }
      let size = 0;
      req.on("data", (chunk: Uint8Array) => size += chunk.length);
      req.on("end", () => {
        const body = `read ${size}`;
        res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
        res.end(body);
      });
    },
  });
}

/** A raw TCP client that keeps everything it receives and how the connection ended. */
async function rawClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  let received = "";
  let ended: string | undefined;
  let failed: string | undefined;
  let closed = false;
  socket.on("data", (chunk) => received += chunk);
  socket.on("end", () => ended ??= "end");
  socket.on("error", (error: NodeJS.ErrnoException) => {
    failed ??= error.code ?? error.message;
    ended ??= failed;
  });
  socket.on("close", () => {
    closed = true;
    ended ??= "close";
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  return {
    socket,
    get received() {
      return received;
    },
    get ended() {
      return ended;
    },
    /** A socket error (a reset) at any time, even after the connection ended. */
    get failed() {
      return failed;
    },
    get closed() {
      return closed;
    },
    responses: () => received.match(/HTTP\/1\.1 \d{3}/g) ?? [],
    async waitFor(test: () => boolean, ms = 3000) {
      const deadline = Date.now() + ms;
      while (!test() && Date.now() < deadline) await delay(10);
      return test();
    },
  };
}

function delay(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("a kept-alive HTTP/1.1 connection carries one request after another", opts, async () => {
  const listener = await start();
  const client = await rawClient(listener.port);
  try {
    const requests = [
      "GET /1 HTTP/1.1\r\nhost: x\r\n\r\n",
      "POST /2 HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello",
      "POST /3 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET /4 HTTP/1.1\r\nhost: x\r\n\r\n",
      "GET /5 HTTP/1.1\r\nhost: x\r\n\r\n",
    ];
    for (const [i, request] of requests.entries()) {
      client.socket.write(request);
      const answered = await client.waitFor(() => client.responses().length > i);
      assert.ok(
        answered,
        `request ${i + 1} unanswered (ended: ${client.ended}):\n${client.received}`,
      );
    }
    assert.deepEqual(client.responses(), Array(5).fill("HTTP/1.1 200"));
    assert.match(client.received, /read 5[\s\S]*read 3/);
    assert.equal(client.ended, undefined);
  } finally {
    client.socket.destroy();
    await listener.close();
  }
});

Deno.test(
  "an answer given before the body was read says Connection: close and ends without a reset",
  opts,
  async () => {
    const listener = await start();
    try {
      for (const size of [10, 256 * 1024]) {
        const client = await rawClient(listener.port);
        const body = "x".repeat(size);
        client.socket.write(
          `POST /refuse HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\n\r\n`,
        );
        await client.waitFor(() => client.responses().length > 0);
        // The client goes on sending its body after the answer, as uploading clients do, and
        // only then closes.
        await new Promise((resolve) => client.socket.write(body, resolve));
        client.socket.end();
        await client.waitFor(() => client.closed);
        assert.deepEqual(client.responses(), ["HTTP/1.1 401"], client.received);
        assert.match(client.received, /\r\nConnection: close\r\n/i, client.received);
        // A FIN after the answer, and no reset (which can cost a client the answer it waits for).
        assert.equal(client.ended, "end", `${size}-byte body: ${client.ended}`);
        assert.equal(client.failed, undefined, `${size}-byte body`);
        client.socket.destroy();
      }
    } finally {
      await listener.close();
    }
  },
);

Deno.test("an HTTP/1.1 header block must arrive within headers_timeout_ms", opts, async () => {
  const listener = await start({ headers_timeout_ms: 300, request_timeout_ms: 600 });
  const client = await rawClient(listener.port);
  try {
    const started = Date.now();
    client.socket.write("GET / HTTP/1.1\r\nhost: x\r\n"); // and never the blank line
    const ended = await client.waitFor(() => client.ended !== undefined, 3000);
    const took = Date.now() - started;
    assert.ok(ended, `a slow header block was kept ${took} ms`);
    assert.match(client.received, /^HTTP\/1\.1 408/);
    assert.ok(took < 1500, `closed after ${took} ms`);
  } finally {
    client.socket.destroy();
    await listener.close();
  }
});
