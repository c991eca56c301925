// A node must not be able to make the controller hold more than it counts (issue 9 follow-up):
// output events padded with unknown fields, and a stream whose node sends heartbeats at line rate
// and never reads what the controller sends back. In process, with a real EdgeHub, CallRegistry
// and DaemonRepository on the test database; the test plays the node and seals real envelopes.
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { type ToolEvent, ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { type PayloadBody, sealEnvelope } from "../../shared/crypto/envelope.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { DaemonRepository } from "../../controller/app/daemons.ts";
import { EdgeHub } from "../../controller/app/edge_sessions.ts";
import type { AuthenticatedNode, NodeAuthenticator } from "../../controller/app/node_auth.ts";
import { callQueue, CallRegistry } from "../../controller/app/call_registry.ts";
import { systemClock } from "../../controller/app/clock.ts";
import type { Db } from "../../controller/store/db.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";

const MIB = 1024 * 1024;
const NODE = "n-memory";

/** A one-byte stdout event carrying `padding` bytes of an unknown field (number 15). */
function paddedEvent(callId: string, padding: number): ToolEvent {
  const data = new BinaryWriter().bytes(new Uint8Array(padding)).finish();
  const event = create(ToolEventSchema, {
    callId,
    event: { case: "stdout", value: new Uint8Array([0x41]) },
  });
  (event as { $unknown?: unknown[] }).$unknown = [{ no: 15, wireType: 2, data }];
  return event;
}

async function setup() {
  const database = await testDatabase();
  const db: Db = await database.open();
  const key = NodePrivateKey.generate();
  const node: AuthenticatedNode = {
    nodeId: NODE,
    tenantId: "t1",
    claims: { jti: "j1", sub: NODE } as AuthenticatedNode["claims"],
    publicKey: key.publicKey,
    fingerprint: "SHA256:x",
    previousKey: false,
  };
  // Token checks are not under test here: every token is this node's.
  const auth = { authenticateToken: () => Promise.resolve(node) } as unknown as NodeAuthenticator;
  let heartbeatWrites = 0;
  class CountingDaemons extends DaemonRepository {
    override heartbeat(nodeId: string): Promise<void> {
      heartbeatWrites++;
      return super.heartbeat(nodeId);
    }
  }
  const daemons = new CountingDaemons(db, systemClock);
  await db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
       status_since, relay_id) VALUES ($1, 't1', $1, 'pk', 'SHA256:x', 'connected', now(), 'r1')`,
    [NODE],
  );
  const hub = new EdgeHub({
    auth,
    daemons,
    clock: systemClock,
    relayId: "r1",
    heartbeatIntervalSecs: 3600,
    log: () => {},
  });
  const session = hub.open("test");
  const nonce = session.nonce;
  let seq = 0n;
  const seal = (body: PayloadBody) =>
    sealEnvelope({ key, token: "t", nodeId: NODE, streamNonce: nonce, seq: ++seq, body });
  return {
    hub,
    session,
    seal,
    heartbeatWrites: () => heartbeatWrites,
    cleanup: async () => {
      await session.closed();
      await database.cleanup();
    },
  };
}

Deno.test(`[${TEST_DB_KIND}] an output event is sized by all it holds, unknown fields too`, () => {
  const queue = callQueue({ maxBufferedBytes: 8 * MIB, stallMs: 1000, maxCalls: 10 }, () => {});
  queue.put(paddedEvent("c1", MIB));
  const counted = queue.bytes;
  assert.ok(counted >= MIB, `a 1-byte event with 1 MiB of padding counted ${counted} B`);
  queue.close();
});

Deno.test(
  `[${TEST_DB_KIND}] padded events from a node: unknown fields dropped, queued bytes are counted`,
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const { hub, session, seal, cleanup } = await setup();
    try {
      await session.receive(seal({ case: "hello", value: { capabilities: {} } as never }));
      const calls: CallRegistry = hub.calls;
      calls.limits = { maxBufferedBytes: 4 * MIB, stallMs: 60_000, maxCalls: 10 };
      const events = calls.open("c1", NODE, () => {});
      // 32 events of one output byte each, 1 MiB of padding each; nobody reads the call yet.
      for (let i = 0; i < 32; i++) {
        await session.receive(seal({ case: "toolEvent", value: paddedEvent("c1", MIB) as never }));
      }
      const held: ToolEvent[] = [];
      for (let i = 0; i < 32; i++) {
        const { value, done } = await events.next();
        assert.ok(!done);
        if (i === 0) {
          const unknown = (value as { $unknown?: unknown[] }).$unknown?.length ?? 0;
          assert.ok(unknown === 0, "unknown fields of a node's payload were kept");
        }
        held.push(value);
      }
      // What the queued events kept alive, backing buffers included.
      const retained = held.reduce(
        (sum, e) => sum + (e.event.value as Uint8Array).buffer.byteLength,
        0,
      );
      console.log(`32 padded one-byte events retain ${(retained / MIB).toFixed(2)} MiB`);
      assert.ok(
        retained <= 4 * MIB,
        `queued output retains ${retained} bytes past its 4 MiB bound`,
      );
      calls.close("c1");
    } finally {
      await cleanup();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a node that floods heartbeats and never reads: bounded outbox, typed end`,
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const { hub, session, seal, heartbeatWrites, cleanup } = await setup();
    try {
      await session.receive(seal({ case: "hello", value: { capabilities: {} } as never }));
      assert.equal(hub.get(NODE), session);
      let ended: unknown;
      let sent = 0;
      const started = performance.now();
      for (; sent < 1500; sent++) {
        try {
          await session.receive(seal({ case: "heartbeat", value: {} as never }));
        } catch (error) {
          ended = error;
          break;
        }
      }
      const ms = performance.now() - started;
      console.log(
        `${sent} heartbeats in ${ms.toFixed(0)} ms: outbox ${session.outbox.size} items, ` +
          `${heartbeatWrites()} heartbeat UPDATEs`,
      );
      assert.ok(session.outbox.size <= 1024, `outbox holds ${session.outbox.size} messages`);
      assert.ok(ended instanceof AegisError, `the stream was not ended (${sent} heartbeats)`);
      assert.equal(ended.code, "RATE_LIMITED");
      assert.equal(ended.details.reason, "outbox_overflow");
      assert.equal(hub.get(NODE), undefined, "an overflowed stream still takes calls");
      // What the node's reader sees: the typed error, with nothing held for it.
      await assert.rejects(session.outbox.next(), /did not read its stream/);
      const budget = Math.ceil(ms / 900) + 1;
      assert.ok(
        heartbeatWrites() <= budget,
        `${heartbeatWrites()} heartbeat UPDATEs in ${ms.toFixed(0)} ms (at most ${budget})`,
      );
    } finally {
      await cleanup();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a call too large for a slow node's outbox is refused alone; the stream lives`,
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const { session, seal, cleanup } = await setup();
    try {
      await session.receive(seal({ case: "hello", value: { capabilities: {} } as never }));
      // The node reads nothing; calls with ~3 MiB of arguments pile up until one would overflow.
      const argumentsJson = JSON.stringify({ shell: "x".repeat(3 * MIB) });
      let refused: AegisError | undefined;
      for (let i = 0; i < 16 && !refused; i++) {
        try {
          session.send({ case: "toolCall", value: { callId: `c${i}`, argumentsJson } as never });
        } catch (error) {
          refused = error as AegisError;
        }
      }
      assert.ok(refused, "no call was refused");
      assert.equal(refused.code, "RATE_LIMITED");
      assert.equal(refused.details.reason, "outbox_full");
      assert.equal(
        session.outbox.closed,
        false,
        "the controller's own call cost the node its stream",
      );
      assert.ok(
        session.send({ case: "heartbeatAck", value: {} as never }),
        "the stream still takes messages",
      );
    } finally {
      await cleanup();
    }
  },
);
