// Controller-side output caps, in process: a real ToolCallService, EdgeHub and database, with the
// test playing the node (it reads the session's outbox and hands events to hub.calls exactly as
// the node's stream would). The node here ignores max_output_bytes and never slows down, which
// the real daemon would not do: the controller must hold its bounds on its own.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  type EdgeDownstream,
  ToolEventSchema,
} from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { DaemonRepository } from "../../controller/app/daemons.ts";
import { EdgeHub, type EdgeSession } from "../../controller/app/edge_sessions.ts";
import { NodeAuthenticator } from "../../controller/app/node_auth.ts";
import { loadOrCreateSigningKey } from "../../controller/app/signing_key.ts";
import { TokenAuthority } from "../../controller/app/tokens.ts";
import { type CallEvent, ToolCallService } from "../../controller/app/tool_calls.ts";
import type { Operator } from "../../controller/app/operators.ts";
import { systemClock } from "../../controller/app/clock.ts";
import type { Db } from "../../controller/store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";

const OPERATOR: Operator = {
  iss: "test",
  sub: "op",
  exp: 0,
  tenant_id: "t1",
  aegis_role: "operator",
  tenants: [],
};

async function setup() {
  const database = await testDatabase();
  const db: Db = await database.open();
  const dir = await Deno.makeTempDir({ prefix: "aegis-caps-" });
  const tokens = new TokenAuthority(await loadOrCreateSigningKey(`${dir}/key.jwk`), "test");
  const daemons = new DaemonRepository(db, systemClock);
  const auth = new NodeAuthenticator(db, tokens, systemClock);
  const hub = new EdgeHub({
    auth,
    daemons,
    clock: systemClock,
    relayId: "r1",
    heartbeatIntervalSecs: 3600,
    log: () => {},
  });
  const calls = new ToolCallService(db, daemons, hub, "r1", systemClock);
  const addNode = async (nodeId: string, status = "connected") => {
    await db.query(
      `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
         status_since, relay_id) VALUES ($1, 't1', $1, 'pk', 'SHA256:x', $2, now(), 'r1')`,
      [nodeId, status],
    );
    const session = hub.open("test");
    hub.register(session, nodeId);
    return session;
  };
  const statusOf = async (callId: string) =>
    (await db.query<{ status: string; truncated: boolean; output_bytes: number }>(
      "SELECT status, truncated, output_bytes FROM tool_calls WHERE call_id = $1",
      [callId],
    ))[0];
  const cleanup = async () => {
    await database.cleanup();
    await Deno.remove(dir, { recursive: true });
  };
  return { hub, calls, addNode, statusOf, cleanup };
}

/** The next downstream message of a case, as the node would read it. */
async function nextOf(session: EdgeSession, kind: EdgeDownstream["body"]["case"]) {
  // next(), not for-await: leaving a for-await loop would close the outbox.
  for (let r = await session.outbox.next(); !r.done; r = await session.outbox.next()) {
    if (r.value.body.case === kind) return r.value.body.value as { callId: string };
  }
  throw new Error(`the stream ended before a ${kind}`);
}

const chunk = (callId: string, size: number) =>
  create(ToolEventSchema, { callId, event: { case: "stdout", value: new Uint8Array(size) } });

Deno.test(`[${TEST_DB_KIND}] the controller cuts a call at max_output_bytes and stops the node`, async () => {
  const t = await setup();
  try {
    const node = await t.addNode("n-caps");
    const events = t.calls.execute(OPERATOR, "n-caps", {
      tool: "cmd.run",
      arguments: { argv: ["yes"], max_output_bytes: 1000 },
      timeoutSecs: 30,
    });
    const started = (await events.next()).value as Extract<CallEvent, { type: "started" }>;
    const { callId } = await nextOf(node, "toolCall");
    assert.equal(callId, started.call_id);
    // A node that ignores the cap sends 10 x 64 KiB.
    const sending = (async () => {
      for (let i = 0; i < 10; i++) await t.hub.calls.deliver("n-caps", chunk(callId, 65536));
    })();
    let received = 0;
    const error = await (async () => {
      try {
        for await (const event of events) {
          if (event.type === "stdout") received += event.data.length;
        }
      } catch (error) {
        return error;
      }
    })();
    await sending;
    assert.ok(error instanceof AegisError && error.code === "OUTPUT_LIMIT", String(error));
    assert.ok(received <= 1000 + 256, `received ${received} bytes`);
    assert.equal((await nextOf(node, "toolCancel")).callId, callId);
    const row = await t.statusOf(callId);
    assert.equal(row.status, "truncated");
    assert.equal(row.truncated, true);
    assert.equal(t.hub.calls.size, 0);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] a caller that stops reading gets a bounded buffer, then a cut-off`, async () => {
  const t = await setup();
  try {
    t.hub.calls.limits = { maxBufferedBytes: 1024 * 1024, stallMs: 300, maxCalls: 100 };
    const node = await t.addNode("n-slow");
    const events = t.calls.execute(OPERATOR, "n-slow", {
      tool: "cmd.run",
      arguments: { argv: ["yes"], max_output_bytes: 64 * 1024 * 1024 },
      timeoutSecs: 30,
    });
    await events.next(); // started; then the caller reads nothing more for a while
    const { callId } = await nextOf(node, "toolCall");
    // The node writes 32 MiB as fast as it can; the controller may hold only ~1 MiB of it.
    let accepted = 0;
    for (let i = 0; i < 128; i++) {
      if (!await t.hub.calls.deliver("n-slow", chunk(callId, 256 * 1024))) break;
      accepted++;
    }
    assert.ok(accepted * 256 * 1024 <= 2 * 1024 * 1024, `accepted ${accepted} chunks`);
    assert.equal((await nextOf(node, "toolCancel")).callId, callId);
    // The caller still gets what was buffered, then a clear cut-off, never "ok".
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const event of events) {
          if (event.type === "stdout") received += event.data.length;
        }
      })(),
      (error: unknown) => error instanceof AegisError && error.code === "OUTPUT_LIMIT",
    );
    assert.equal(received, accepted * 256 * 1024);
    assert.equal((await t.statusOf(callId)).status, "cut_off");
    assert.equal(t.hub.calls.size, 0);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] a revoked host gets no calls`, async () => {
  const t = await setup();
  try {
    await t.addNode("n-revoked", "revoked");
    const events = t.calls.execute(OPERATOR, "n-revoked", {
      tool: "cmd.run",
      arguments: { argv: ["true"] },
      timeoutSecs: 5,
    });
    await assert.rejects(
      events.next(),
      (error: unknown) => error instanceof AegisError && error.code === "NODE_REVOKED",
    );
    assert.equal(t.hub.calls.size, 0);
  } finally {
    await t.cleanup();
  }
});
