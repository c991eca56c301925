// Cross-relay tool calls: a real daemon on relay A, `seq 1 <n>` run through relay B (which does
// not hold the stream), repeated. Prints bytes delivered (of expected), whether they arrived in
// order, and throughput. Needs PostgreSQL (relays share it): set AEGIS_TEST_PG_DSN.
//
//   AEGIS_TEST_PG_DSN=postgres://... deno task bench:relay [--count 100000] [--runs 5]
import { parseArgs } from "node:util";
import { type ControllerProcess, startControllerProcess } from "../tests/support/controller.ts";
import { type Host, makeHost } from "../tests/support/host.ts";
import { TEST_DB_KIND, testDatabase } from "../tests/support/db.ts";
import { fromBase64 } from "../shared/crypto/encoding.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { count: { type: "string", default: "100000" }, runs: { type: "string", default: "5" } },
});
if (TEST_DB_KIND !== "postgres") {
  console.error("relay_bench needs AEGIS_TEST_PG_DSN (relays share one PostgreSQL)");
  Deno.exit(2);
}
const count = Number(values.count);
const expected = Array.from({ length: count }, (_, i) => `${i + 1}\n`).join("");

const db = await testDatabase();
const shared = await Deno.makeTempDir({ prefix: "aegis-relay-bench-" });
const common = { db, signingKeyFile: `${shared}/signing-key.jwk` };
const processes: ControllerProcess[] = [];
let host: Host | undefined;
try {
  const relayA = await startControllerProcess({ ...common, nodeName: "relay-a" });
  processes.push(relayA);
  const relayB = await startControllerProcess({ ...common, nodeName: "relay-b" });
  processes.push(relayB);
  host = await makeHost();
  const { token: enrollment } = await relayA.issueEnrollment("bench");
  const args = ["edge", "enroll", enrollment, "--non-interactive", "--no-service"];
  // Newer agents keep the shell tool off unless the host allows it; older ones lack the flag.
  const help = await host.aegis(["edge", "enroll", "--help"]);
  if (help.stdout.includes("--local-tools")) args.push("--local-tools", "shell");
  const enrolled = await host.aegis(args);
  if (enrolled.code !== 0) throw new Error(enrolled.stderr);
  const nodeId = enrolled.stdout.match(/Attested as node (n-[0-9a-f]+)/)![1];
  await host.startDaemon().waitFor(/stream connected/);
  const token = await relayB.operatorToken("bench", "operator");

  for (let run = 1; run <= Number(values.runs); run++) {
    const started = performance.now();
    const response = await relayB.api(`/v1/edge/hosts/${nodeId}/exec`, {
      method: "POST",
      token,
      body: JSON.stringify({ argv: ["seq", "1", String(count)], max_output_bytes: 64 << 20 }),
    });
    const lines = (await response.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const ms = performance.now() - started;
    const text = lines.filter((e) => e.type === "stdout")
      .map((e) => new TextDecoder().decode(fromBase64(e.data))).join("");
    const end = lines.at(-1);
    console.log(
      `run ${run}: ${text.length} of ${expected.length} bytes, in order: ${text === expected}, ` +
        `${ms.toFixed(0)} ms, ${(text.length / 1024 / 1024 / (ms / 1000)).toFixed(2)} MiB/s, ` +
        `ended: ${end?.type === "exit" ? `exit ${end.exit_code}` : JSON.stringify(end)}`,
    );
  }
} finally {
  await host?.cleanup();
  for (const p of processes) await p.stop().catch(() => {});
  await db.cleanup();
  await Deno.remove(shared, { recursive: true });
}
