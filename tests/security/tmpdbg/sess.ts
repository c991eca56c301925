import * as net from "node:net";
import { listen } from "../../../controller/server/listener.ts";
import { DEFAULT_LIMITS } from "../../../controller/server/limits.ts";
const l = await listen({ host: "127.0.0.1", port: 0, handler: (_q, s) => s.end("x"), limits: { ...DEFAULT_LIMITS, h2_first_stream_timeout_ms: 1000, handshake_timeout_ms: 1000 } });
for (const greeting of ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"]) {
  const s = net.connect(l.port, "127.0.0.1");
  await new Promise((r) => s.once("connect", r));
  s.write(greeting);
  const t = Date.now();
  const r = await Promise.race([new Promise((r) => s.once("close", () => r("closed"))), new Promise((r) => setTimeout(() => r("open"), 4000))]);
  console.log(JSON.stringify(greeting.length), r, Date.now() - t, Date.now() % 100000);
  s.destroy();
}
await l.close();
