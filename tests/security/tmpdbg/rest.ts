import { startControllerProcess } from "../../support/controller.ts";
const c = await startControllerProcess({});
const token = await c.operatorToken("team-a");
const big = new Uint8Array(8 * 1024 * 1024).fill(0x20);
function chunks(data: Uint8Array): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({ pull(controller) { if (offset >= data.length) return controller.close(); controller.enqueue(data.subarray(offset, offset + 65536)); offset += 65536; } });
}
for (const body of [big, chunks(big), big, chunks(big), "{}", undefined]) {
  try {
    const r = await c.api(body === undefined ? "/v1/edge/hosts" : "/v1/edge/enrollment-tokens", body === undefined ? { token } : { method: "POST", token, body });
    console.log(r.status, r.headers.get("content-type"), (await r.text()).slice(0, 300));
  } catch (e) { console.log("err", String(e)); }
}
await c.stop();
