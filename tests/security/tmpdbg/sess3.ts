import * as net from "node:net";
import * as http2 from "node:http2";
const mode = Deno.args[0];
const opts = mode.includes("opts") ? { settings: { maxConcurrentStreams: 256, maxHeaderListSize: 16384 }, maxSessionMemory: 10 } : {};
const h2 = http2.createServer(opts, (_q, s) => s.end("x"));
let raw: net.Socket | undefined;
h2.on("session", (session) => {
  console.log("session event", Date.now() % 100000);
  setTimeout(() => {
    if (mode.includes("sessdestroy")) session.destroy();
    if (mode.includes("sessclose")) session.close();
    if (mode.includes("raw")) raw!.destroy();
    if (mode.includes("rawend")) raw!.end();
    if (mode.includes("handle")) { const h = (raw as any)._handle; console.log("handle", h && Object.getOwnPropertyNames(Object.getPrototypeOf(h)).join(","), h?.fd, h?.[Object.getOwnPropertySymbols(h)[0]]); h?.close?.(); }
    if (mode.includes("reset")) (raw as any).resetAndDestroy();
  }, 500);
});
const server = net.createServer((sock) => { raw = sock; sock.once("data", (d) => { sock.pause(); sock.unshift(d); h2.emit("connection", sock); sock.resume(); }); });
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
const port = (server.address() as net.AddressInfo).port;
const s = net.connect(port, "127.0.0.1");
await new Promise((r) => s.once("connect", r));
s.write(mode.includes("settings") ? "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00" : "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const t = Date.now();
const r = await Promise.race([new Promise((r) => s.once("close", () => r("closed"))), new Promise((r) => setTimeout(() => r("open"), 2000))]);
console.log(mode, r, Date.now() - t);
s.destroy(); server.close(); h2.close();
