import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { HelloSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { checkHello, HELLO_LIMITS } from "./hello_limits.ts";

const hello = (init: Parameters<typeof create<typeof HelloSchema>>[1]) => create(HelloSchema, init);
const labels = (n: number, value = "v") =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value]));

Deno.test("checkHello() accepts a Hello at every bound", () => {
  checkHello(hello({
    labels: labels(HELLO_LIMITS.labels, "x".repeat(HELLO_LIMITS.labelValueChars)),
    capabilities: { localTools: ["shell"], mountPoints: ["/srv"], hostname: "h".repeat(255) },
    heartbeatIntervalSecs: HELLO_LIMITS.heartbeatIntervalSecs,
  }));
});

Deno.test("checkHello() refuses each oversized part with INVALID_ARGUMENT naming it", () => {
  const cases: Array<[Parameters<typeof hello>[0], RegExp]> = [
    [{ labels: labels(HELLO_LIMITS.labels + 1) }, /65 labels \(at most 64\)/],
    [{ labels: { ["k".repeat(64)]: "v" } }, /characters in label key/],
    [{ labels: { "": "v" } }, /label key is empty/],
    [{ labels: { k: "v".repeat(257) } }, /in the value of label "k"/],
    [{ capabilities: { localTools: Array(129).fill("t") } }, /129 local tools/],
    [{ capabilities: { mountPoints: Array(65).fill("/m") } }, /65 mount points/],
    [{ capabilities: { mountPoints: ["/".repeat(4097)] } }, /4097 characters in/],
    [{ capabilities: { os: "o".repeat(256) } }, /256 characters in os/],
    [{ capabilities: { localTools: Array(128).fill("t".repeat(300)) } }, /bytes of labels and/],
    [{ heartbeatIntervalSecs: 3601 }, /heartbeat interval/],
  ];
  for (const [init, message] of cases) {
    assert.throws(
      () => checkHello(hello(init)),
      { code: "INVALID_ARGUMENT", message },
      String(message),
    );
  }
});

Deno.test("checkHello() quotes at most a preview of an oversized name", () => {
  const key = "k".repeat(10_000);
  assert.throws(() => checkHello(hello({ labels: { [key]: "v" } })), (error: Error) => {
    assert.ok(error.message.length < 200, error.message);
    return true;
  });
});

Deno.test("checkHello() refuses control and format characters in anything an operator is shown", () => {
  const cases: Array<[Parameters<typeof hello>[0], RegExp]> = [
    [{ capabilities: { hostname: "web-1\u001b]0;pwned\u0007" } }, /U\+001B/],
    [{ labels: { role: "db\r\nrole: web" } }, /U\+000D/],
    [{ labels: { ["a\u202Eb"]: "v" } }, /U\+202E/],
    [{ capabilities: { localTools: ["sh\u200Bell"] } }, /U\+200B/],
    [{ capabilities: { os: "linux\u0000" } }, /U\+0000/],
  ];
  for (const [init, message] of cases) {
    assert.throws(() => checkHello(hello(init)), { code: "INVALID_ARGUMENT", message });
  }
  // The refusal itself shows none of them.
  assert.throws(() => checkHello(hello({ labels: { ["a\u202Eb"]: "v" } })), (error: Error) => {
    assert.doesNotMatch(error.message, /[\p{Cc}\p{Cf}]/u);
    return true;
  });
  // Names outside ASCII are fine.
  checkHello(hello({ capabilities: { hostname: "büro-rechner" }, labels: { ort: "Zürich" } }));
});
