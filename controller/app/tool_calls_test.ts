// The call path for a host whose stream is on this process: real sessions (each said a signed
// Hello), a real database, and the test playing the node.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { sealEnvelope } from "../../shared/crypto/envelope.ts";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { DaemonRepository } from "./daemons.ts";
import { EdgeHub, type EdgeSession } from "./edge_sessions.ts";
import { NodeAuthenticator } from "./node_auth.ts";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { TokenAuthority } from "./tokens.ts";
import { type CallEvent, ToolCallService } from "./tool_calls.ts";
import type { Operator } from "./operators.ts";
import { systemClock } from "./clock.ts";

const operator = (tenant: string): Operator => ({
  iss: "test",
  sub: `op-${tenant}`,
  exp: 0,
  tenant_id: tenant,
  aegis_role: "operator",
  tenants: [],
});

async function setup() {
  const database = await testDatabase();
  const store = await database.open();
  const statements: string[] = [];
  const db: Queryable = {
    query: (sql, params) => {
      statements.push(sql);
      return store.query(sql, params);
    },
  };
  const dir = await Deno.makeTempDir({ prefix: "aegis-calls-" });
  const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/key.jwk`), "test");
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
  const sessions: EdgeSession[] = [];
  /** A node of tenant t1 whose stream said Hello; it answers every call with exit 0. */
  const connect = async (nodeId: string): Promise<EdgeSession> => {
    const key = NodePrivateKey.generate();
    const fingerprint = await key.publicKey.fingerprint();
    const { token, claims } = await tokens.issueNode({
      nodeId,
      tenantId: "t1",
      keyFingerprint: fingerprint,
      ttlSecs: 3600,
    });
    await store.query(
      `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
         status_since, token_jti, token_expires_at)
       VALUES ($1, 't1', $1, $2, $3, 'pending', now(), $4, $5)`,
      [nodeId, key.publicKey.toBase64(), fingerprint, claims.jti, new Date(claims.exp * 1000)],
    );
    const session = hub.open("127.0.0.1");
    sessions.push(session);
    await session.receive(sealEnvelope({
      key,
      token,
      nodeId,
      streamNonce: session.nonce,
      seq: 1n,
      body: { case: "hello", value: { heartbeatIntervalSecs: 3600 } as never },
    }));
    (async () => {
      for (let r = await session.outbox.next(); !r.done; r = await session.outbox.next()) {
        if (r.value.body.case !== "toolCall") continue;
        await hub.calls.deliver(
          nodeId,
          create(ToolEventSchema, {
            callId: r.value.body.value.callId,
            event: { case: "exit", value: { exitCode: 0 } },
          }),
        );
      }
    })().catch(() => {}); // the stream ended
    return session;
  };
  const run = async (who: Operator, nodeId: string) => {
    const seen: CallEvent[] = [];
    for await (
      const event of calls.execute(who, nodeId, { tool: "echo", arguments: {}, timeoutSecs: 5 })
    ) seen.push(event);
    return seen;
  };
  const cleanup = async () => {
    for (const session of sessions) await session.closed();
    await calls.flushHistory();
    await database.cleanup();
    await Deno.remove(dir, { recursive: true });
  };
  return { store, statements, hub, calls, connect, run, cleanup };
}

Deno.test(`[${TEST_DB_KIND}] execute() takes a live host from its stream, not the database`, async () => {
  const t = await setup();
  try {
    await t.connect("n-a");
    t.statements.length = 0;
    const events = await t.run(operator("t1"), "n-a");
    assert.deepEqual(events.map((e) => e.type), ["started", "exit"]);
    assert.ok(
      !t.statements.some((sql) => /FROM edge_daemons/.test(sql)),
      `no host read on the call path: ${t.statements.join("; ")}`,
    );
    const rows = await t.store.query<{ status: string; tenant_id: string }>(
      "SELECT status, tenant_id FROM tool_calls",
    );
    assert.deepEqual(rows, [{ status: "ok", tenant_id: "t1" }]);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] execute() reports another tenant's live host as missing`, async () => {
  const t = await setup();
  try {
    await t.connect("n-a");
    await assert.rejects(
      t.run(operator("t2"), "n-a"),
      (e) => e instanceof AegisError && e.code === "NOT_FOUND" && e.message === "no edge host n-a",
    );
    assert.deepEqual(await t.store.query("SELECT call_id FROM tool_calls"), []);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] execute() refuses a host whose stream was ended by a revocation`, async () => {
  const t = await setup();
  try {
    await t.connect("n-a");
    await t.store.query("UPDATE edge_daemons SET status = 'revoked' WHERE node_id = 'n-a'");
    t.hub.end("n-a", new AegisError("NODE_REVOKED", "node n-a was revoked"));
    await assert.rejects(
      t.run(operator("t1"), "n-a"),
      (e) => e instanceof AegisError && e.code === "NODE_REVOKED",
    );
    await t.calls.flushHistory();
    const rows = await t.store.query<{ status: string }>("SELECT status FROM tool_calls");
    assert.deepEqual(rows, [{ status: "refused" }]);
  } finally {
    await t.cleanup();
  }
});
