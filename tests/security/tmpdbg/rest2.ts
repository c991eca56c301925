import * as net from "node:net";
import { startControllerProcess } from "../../support/controller.ts";
const c = await startControllerProcess({});
const token = await c.operatorToken("team-a");
for (const chunked of [false, true]) {
  const s = net.connect(c.port, "127.0.0.1");
  s.on("error", (e) => console.log("sock err", e.message));
  let out = "";
  s.on("data", (d) => out += d.toString());
  await new Promise((r) => s.once("connect", r));
  const N = 2 * 1024 * 1024;
  s.write(`POST /v1/edge/enrollment-tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n` + (chunked ? "Transfer-Encoding: chunked\r\n\r\n" : `Content-Length: ${N}\r\n\r\n`));
  const piece = " ".repeat(65536);
  for (let i = 0; i < N / 65536 && !s.destroyed; i++) {
    s.write(chunked ? `10000\r\n${piece}\r\n` : piece);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 1000));
  console.log(chunked, JSON.stringify(out.slice(0, 800)));
  s.destroy();
}
await c.stop();
