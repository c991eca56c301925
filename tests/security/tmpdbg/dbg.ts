import { connectH2, grpcFrame, gzipBomb, h2Call, RPC, rssMiB } from "../wire.ts";
import { startControllerProcess } from "../../support/controller.ts";
const b = await gzipBomb(512 * 1024 * 1024);
const c = await startControllerProcess({ yaml: "limits:\n  edge_auth_deadline_ms: 3000" });
const pid = c.process.child.pid;
console.log("controller", c.port, rssMiB(pid));
const s = await connectH2(c.port);
for (const path of Object.values(RPC)) {
  const t = Date.now();
  const r1 = await h2Call(s, path, {
    headers: { "grpc-encoding": "gzip" },
    chunks: [grpcFrame(b, true)],
    timeoutMs: 5000,
  });
  const r2 = await h2Call(s, path, { chunks: [grpcFrame(b, true)], timeoutMs: 5000 });
  const r3 = await h2Call(s, path, {
    chunks: [grpcFrame(new Uint8Array(2 * 1024 * 1024), false, 512 * 1024 * 1024)],
    timeoutMs: 5000,
  });
  const r4 = await h2Call(s, path, {
    chunks: [grpcFrame(new Uint8Array(10), false, 100)],
    timeoutMs: 5000,
  });
  console.log(
    path,
    Date.now() - t,
    JSON.stringify([r1, r2, r3, r4].map((r) => ({ ...r, body: r.body.length }))),
    rssMiB(pid),
  );
}
s.close();
await c.stop();
console.log(c.process.stderr.slice(-3000));
