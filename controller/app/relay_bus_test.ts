import assert from "node:assert/strict";
import type { Db } from "../store/db.ts";
import type { EdgeHub } from "./edge_sessions.ts";
import { chunksUnder, MAX_PAYLOAD_BYTES, RelayBus } from "./relay_bus.ts";

/** A database that only carries NOTIFY, in process, to every listener of the channel. */
function fakeBus() {
  const listeners = new Map<string, ((payload: string) => void)[]>();
  const sent: string[] = [];
  let release: (() => void) | undefined;
  const db = {
    kind: "pglite",
    listen: (channel: string, onPayload: (payload: string) => void) => {
      listeners.set(channel, [...(listeners.get(channel) ?? []), onPayload]);
      return Promise.resolve(() => Promise.resolve());
    },
    async notify(channel: string, payload: string) {
      sent.push(payload);
      // The first NOTIFY is held until released, so that later ones queue behind it.
      if (sent.length === 1) await new Promise<void>((resolve) => release = resolve);
      for (const listener of listeners.get(channel) ?? []) listener(payload);
    },
  } as unknown as Db;
  return { db, sent, release: () => release?.() };
}

function fakeHub(replaced: string[], ended: string[]) {
  return {
    get: (nodeId: string) => ({
      credentialsReplaced: () => replaced.push(nodeId),
    }),
    end: (nodeId: string) => ended.push(nodeId),
  } as unknown as EdgeHub;
}

Deno.test("credentials changes sent while a NOTIFY is in flight share the next one", async () => {
  const { db, sent, release } = fakeBus();
  const replaced: string[] = [];
  const bus = new RelayBus(db, fakeHub(replaced, []), "r1", () => {});
  await bus.start();
  const first = bus.broadcast("credentials", "n-1", 30_000);
  const rest = ["n-2", "n-3", "n-4"].map((id) => bus.broadcast("credentials", id, 30_000));
  release();
  await Promise.all([first, ...rest]);
  assert.equal(sent.length, 2, "one NOTIFY for the first, one for the three queued behind it");
  // A lone node keeps the one-node form every relay understands.
  assert.deepEqual(JSON.parse(sent[0]).node_id, "n-1");
  assert.deepEqual(JSON.parse(sent[1]).node_ids, ["n-2", "n-3", "n-4"]);
  assert.deepEqual(replaced.sort(), ["n-1", "n-2", "n-3", "n-4"]);
});

Deno.test("a revocation is still its own message, and a one-node message is understood", async () => {
  const { db, sent, release } = fakeBus();
  const ended: string[] = [];
  const bus = new RelayBus(db, fakeHub([], ended), "r1", () => {});
  await bus.start();
  release();
  const done = bus.broadcast("revoked", "n-9");
  release();
  await done;
  assert.equal(JSON.parse(sent[0]).node_id, "n-9");
  assert.deepEqual(ended, ["n-9"]);
});

Deno.test("chunksUnder() keeps every id, in order, each run under the byte budget", () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `n-${i.toString(16).padStart(16, "0")}`);
  const chunks = chunksUnder(ids, MAX_PAYLOAD_BYTES);
  assert.ok(chunks.length > 1);
  assert.deepEqual(chunks.flat(), ids);
  for (const chunk of chunks) assert.ok(JSON.stringify(chunk).length <= MAX_PAYLOAD_BYTES);
  // An id longer than the budget still goes, alone.
  assert.deepEqual(chunksUnder(["x".repeat(50)], 10), [["x".repeat(50)]]);
});
