// The controller's own share of a tool call, in one process and without the network: operator
// token verification, then ToolCallService.execute() from the request to the exit event, with
// real EdgeHub sessions (each said a signed Hello) and the real database (PGlite in a data dir,
// as the controller runs it, or PostgreSQL with AEGIS_TEST_PG_DSN). The bench plays the node: it
// answers each call the moment it reaches the session's outbox. What is left of a REST round trip
// on top of this is HTTP and the node's stream (bench/tool_call_bench.ts measures all of it).
// Prints numbers; asserts nothing.
//
//   deno run -A bench/call_path_bench.ts [--daemons 1000] [--calls 500] [--history 0]
//
// --history N first fills tool_calls with N finished calls: a call's final status is written by
// an UPDATE whose cost must not grow with the history kept.
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { ToolEventSchema } from "../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { sealEnvelope } from "../shared/crypto/envelope.ts";
import { DaemonRepository } from "../controller/app/daemons.ts";
import { EdgeHub, type EdgeSession } from "../controller/app/edge_sessions.ts";
import { NodeAuthenticator } from "../controller/app/node_auth.ts";
import { loadOrCreateSigningKey } from "../controller/app/signing_key.ts";
import { TokenAuthority } from "../controller/app/tokens.ts";
import { ToolCallService } from "../controller/app/tool_calls.ts";
import { systemClock } from "../controller/app/clock.ts";
import { type Db, openDb } from "../controller/store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../tests/support/db.ts";
import { percentile } from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    daemons: { type: "string", default: "1000" },
    calls: { type: "string", default: "500" },
    history: { type: "string", default: "0" },
  },
});

const dir = await Deno.makeTempDir({ prefix: "aegis-callpath-" });
const database = TEST_DB_KIND === "postgres" ? await testDatabase() : undefined;
const db: Db = database ? await database.open() : await openDb({ dataDir: dir });
const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/key.jwk`), "bench");
const daemons = new DaemonRepository(db, systemClock);
const hub = new EdgeHub({
  auth: new NodeAuthenticator(db, tokens, systemClock),
  daemons,
  clock: systemClock,
  relayId: "r1",
  heartbeatIntervalSecs: 3600,
  log: () => {},
});
const calls = new ToolCallService(db, daemons, hub, "r1", systemClock);

/** A node with its row, its token and a session that said Hello; it answers every call. */
async function connect(i: number): Promise<string> {
  const key = NodePrivateKey.generate();
  const nodeId = `n-bench-${i}`;
  const fingerprint = await key.publicKey.fingerprint();
  const { token, claims } = await tokens.issueNode({
    nodeId,
    tenantId: "bench",
    keyFingerprint: fingerprint,
    ttlSecs: 3600,
  });
  await db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
       status_since, token_jti, token_expires_at)
     VALUES ($1, 'bench', $1, $2, $3, 'pending', now(), $4, $5)`,
    [nodeId, key.publicKey.toBase64(), fingerprint, claims.jti, new Date(claims.exp * 1000)],
  );
  const session = hub.open("127.0.0.1");
  await session.receive(sealEnvelope({
    key,
    token,
    nodeId,
    streamNonce: session.nonce,
    seq: 1n,
    body: { case: "hello", value: { heartbeatIntervalSecs: 3600 } as never },
  }));
  void answer(session, nodeId);
  return nodeId;
}

async function answer(session: EdgeSession, nodeId: string): Promise<void> {
  for (let r = await session.outbox.next(); !r.done; r = await session.outbox.next()) {
    const body = r.value.body;
    if (body.case !== "toolCall") continue;
    const exit = create(ToolEventSchema, {
      callId: body.value.callId,
      event: { case: "exit", value: { exitCode: 0, resultJson: '{"message":"ping"}' } },
    });
    void hub.calls.deliver(nodeId, exit);
  }
}

async function measure(label: string, count: number, once: () => Promise<unknown>) {
  for (let i = 0; i < Math.min(50, count); i++) await once(); // warm up
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await once();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  console.log(
    `  ${label.padEnd(34)} p50 ${percentile(samples, 50).toFixed(3)} ms  p99 ${
      percentile(samples, 99).toFixed(3)
    } ms  (n=${count})`,
  );
}

const operatorToken = await tokens.issueOperator({
  subject: "bench",
  tenantId: "bench",
  role: "operator",
  ttlSecs: 3600,
});
const count = Number(values.calls);
const echo = (nodeId: string) => async () => {
  const operator = await tokens.verifyOperator(operatorToken);
  const events = calls.execute(operator, nodeId, {
    tool: "echo",
    arguments: { message: "ping" },
    timeoutSecs: 30,
  });
  for await (const event of events) if (event.type === "exit") return;
};

console.log(
  `# call-path bench (in process, no network) on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores)`,
);
try {
  const history = Number(values.history);
  if (history > 0) {
    await db.query(
      `INSERT INTO tool_calls (call_id, node_id, tenant_id, tool, summary, requested_by, status,
                               started_at, finished_at)
       SELECT 'old-' || g, 'n-bench-old', 'bench', 'echo', 'echo', 'bench', 'ok', now(), now()
         FROM generate_series(1, $1::integer) AS g`,
      [history],
    );
    console.log(`history: ${history} finished calls`);
  }
  await measure("operator token verify", count, () => tokens.verifyOperator(operatorToken));
  const first = await connect(0);
  console.log("with 1 session:");
  await measure("echo: verify + execute to exit", count, echo(first));
  const total = Number(values.daemons);
  for (let i = 1; i < total; i++) await connect(i);
  console.log(`with ${hub.size} sessions:`);
  await measure("echo: verify + execute to exit", count, echo(`n-bench-${Math.floor(total / 2)}`));
  // Ten callers at once: what batching the history writes buys under load.
  const parallel = 10;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async (_, k) => {
      const run = echo(`n-bench-${k}`);
      for (let i = 0; i < count / parallel; i++) await run();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `  ${parallel} callers at once: ${(count / seconds).toFixed(0)} calls/s`,
  );
} finally {
  await db.close();
  await database?.cleanup();
  await Deno.remove(dir, { recursive: true });
}
Deno.exit(0);
