import { connectH2, grpcFrame, h2Call, RPC } from "../wire.ts";
import { startControllerProcess } from "../../support/controller.ts";
const variant = Deno.args[0];
const c = await startControllerProcess({ yaml: "limits:\n  edge_auth_deadline_ms: 3000" });
for (let round = 0; round < 3; round++) {
  const s = await connectH2(c.port);
  if (variant === "unary") {
    await h2Call(s, RPC.healthCheck, { chunks: [grpcFrame(new Uint8Array(10), false, 100)] });
    await h2Call(s, RPC.healthCheck, {
      chunks: [grpcFrame(new Uint8Array(2 * 1024 * 1024), false, 1 << 29)],
    });
  } else if (variant === "edge") {
    await h2Call(s, RPC.connectEdge, { chunks: [grpcFrame(new Uint8Array(10), false, 100)] });
  } else if (variant === "edgebig") {
    await h2Call(s, RPC.connectEdge, {
      chunks: [grpcFrame(new Uint8Array(2 * 1024 * 1024), false, 1 << 29)],
    });
  } else if (variant === "unarybig") {
    await h2Call(s, RPC.healthCheck, {
      chunks: [grpcFrame(new Uint8Array(2 * 1024 * 1024), false, 1 << 29)],
    });
  }
  s.close();
  await new Promise((r) => setTimeout(r, 500));
}
await new Promise((r) => setTimeout(r, 500));
let alive = true;
try {
  await c.api("/healthz");
} catch {
  alive = false;
}
console.log(variant, "alive", alive, c.process.stderr.includes("Assertion") ? "ASSERT" : "");
await c.stop();
