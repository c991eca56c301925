import * as net from "node:net";
import * as http2 from "node:http2";
const h2 = http2.createServer({}, (_q, s) => s.end("x"));
h2.on("session", (session) => {
  console.log("session event"); const sk = session.socket; console.log(typeof sk, sk?.remoteAddress);
  setTimeout(() => { console.log("destroying"); sk.destroy(); session.destroy(); console.log("ok"); }, 500);
});
const server = net.createServer((sock) => { sock.once("data", (d) => { sock.pause(); sock.unshift(d); h2.emit("connection", sock); sock.resume(); }); });
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
const port = (server.address() as net.AddressInfo).port;
const s = net.connect(port, "127.0.0.1");
await new Promise((r) => s.once("connect", r));
s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const r = await Promise.race([new Promise((r) => s.once("close", () => r("closed"))), new Promise((r) => setTimeout(() => r("open"), 3000))]);
console.log(r);
s.destroy(); server.close();
