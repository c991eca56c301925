import assert from "node:assert/strict";
import {
  type AuditAnchor,
  type AuditRecord,
  canonicalRecord,
  chainRecord,
  describeProblem,
  GENESIS_HASH,
  recordHash,
  type UnhashedRecord,
  verifyChain,
} from "./audit_chain.ts";

function unhashed(seq: number, tenant = "t1"): UnhashedRecord {
  return {
    tenant_id: tenant,
    seq,
    recorded_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    retain_until: new Date(Date.UTC(2026, 3, 1, 0, 0, seq)).toISOString(),
    actor_kind: "operator",
    actor_issuer: "aegis",
    actor_subject: "alice",
    actor_context: "aegis-system-operator",
    action: "node.revoke",
    target: `n-${seq}`,
    outcome: "ok",
    detail: seq % 2 ? JSON.stringify({ reason: "lost laptop" }) : null,
    execution_id: null,
    relay_id: "r1",
  };
}

/** A chain of seq from..to, chained from `prev` (GENESIS for a whole chain). */
function chain(from: number, to: number, prev = GENESIS_HASH, tenant = "t1"): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (let seq = from; seq <= to; seq++) {
    const record = chainRecord(prev, unhashed(seq, tenant));
    records.push(record);
    prev = record.hash;
  }
  return records;
}

function anchorOf(records: AuditRecord[], pruned?: AuditRecord): AuditAnchor {
  const last = records.at(-1);
  return {
    tenant_id: "t1",
    pruned_through_seq: pruned?.seq ?? 0,
    pruned_through_hash: pruned?.hash ?? GENESIS_HASH,
    head_seq: last?.seq ?? pruned?.seq ?? 0,
    head_hash: last?.hash ?? pruned?.hash ?? GENESIS_HASH,
  };
}

const messages = (records: AuditRecord[], anchor: AuditAnchor, options = {}) =>
  verifyChain(records, anchor, options).problems.map(describeProblem);

Deno.test("the canonical form is a fixed-order JSON array, whatever order the keys came in", () => {
  const record = unhashed(3);
  const shuffled = Object.fromEntries(Object.entries(record).reverse()) as UnhashedRecord;
  assert.equal(canonicalRecord(shuffled), canonicalRecord(record));
  assert.equal(
    canonicalRecord(record),
    '["t1",3,"2026-01-01T00:00:03.000Z","2026-04-01T00:00:03.000Z","operator","aegis","alice",' +
      '"aegis-system-operator","node.revoke","n-3","ok","{\\"reason\\":\\"lost laptop\\"}",null,"r1"]',
  );
});

Deno.test("the hash is SHA-256 hex over the previous hash and the canonical record", () => {
  const record = unhashed(1);
  const hash = recordHash(GENESIS_HASH, record);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.notEqual(recordHash("1".repeat(64), record), hash);
  // A field's content cannot pose as a separator: moving text between fields changes the hash.
  const moved = { ...record, actor_subject: 'alice","x', actor_context: "" };
  assert.notEqual(recordHash(GENESIS_HASH, moved), hash);
});

Deno.test("an intact chain verifies, and an empty one too", () => {
  const records = chain(1, 5);
  const result = verifyChain(records, anchorOf(records));
  assert.deepEqual(result.problems, []);
  assert.equal(result.ok, true);
  assert.deepEqual([result.records, result.firstSeq, result.lastSeq], [5, 1, 5]);
  assert.equal(verifyChain([], anchorOf([])).ok, true);
});

Deno.test("an edited record is named by its seq", () => {
  const records = chain(1, 8);
  const anchor = anchorOf(records);
  records[6] = { ...records[6], outcome: "refused" };
  assert.deepEqual(messages(records, anchor), [
    "record 7 was edited (its content no longer matches its hash)",
  ]);
});

Deno.test("a record rewritten with a fresh hash is caught by the next record's link", () => {
  const records = chain(1, 8);
  const anchor = anchorOf(records);
  records[3] = chainRecord(records[2].hash, { ...unhashed(4), target: "n-other" });
  assert.deepEqual(messages(records, anchor), [
    "record 4 was rewritten (the record after it was chained to another)",
  ]);
  // The newest one has no next record: the head names it instead.
  const tail = chain(1, 3);
  const tailAnchor = anchorOf(tail);
  tail[2] = chainRecord(tail[1].hash, { ...unhashed(3), outcome: "failed" });
  assert.deepEqual(messages(tail, tailAnchor), [
    "record 3 was rewritten (the record after it was chained to another)",
  ]);
});

Deno.test("deleted records in the middle and at the front are missing", () => {
  const records = chain(1, 9);
  const anchor = anchorOf(records);
  assert.deepEqual(messages(records.filter((r) => r.seq !== 5), anchor), [
    "record 5 is missing",
  ]);
  assert.deepEqual(messages(records.filter((r) => r.seq < 3 || r.seq > 6), anchor), [
    "records 3..6 are missing",
  ]);
  assert.deepEqual(messages(records.slice(2), anchor), ["records 1..2 are missing"]);
});

Deno.test("a deleted tail is caught by the head", () => {
  const records = chain(1, 10);
  const anchor = anchorOf(records);
  assert.deepEqual(messages(records.slice(0, 9), anchor), [
    "record 10 is missing (it was the newest)",
  ]);
  assert.deepEqual(messages(records.slice(0, 7), anchor), [
    "records 8..10 are missing (they were the newest)",
  ]);
  assert.deepEqual(messages([], anchor), ["records 1..10 are missing (they were the newest)"]);
});

Deno.test("reordered and duplicated records are named", () => {
  const records = chain(1, 5);
  const anchor = anchorOf(records);
  const swapped = [records[0], records[1], records[3], records[2], records[4]];
  assert.deepEqual(messages(swapped, anchor), [
    "record 3 is missing",
    "record 3 is out of order (it comes after record 4)",
  ]);
  const twice = [records[0], records[1], records[1], ...records.slice(2)];
  assert.deepEqual(messages(twice, anchor), ["record 2 appears twice"]);
});

Deno.test("records of another tenant or past the head do not belong", () => {
  const records = chain(1, 3);
  const anchor = anchorOf(records);
  const other = chain(1, 3, GENESIS_HASH, "t2");
  assert.deepEqual(messages([...records, ...chain(4, 4, records[2].hash)], anchor), [
    "record 4 does not belong here: it is past the head (record 3)",
  ]);
  assert.deepEqual(messages([records[0], other[1], records[2]], anchor), [
    'record 2 does not belong here: it is of tenant "t2", not "t1"',
    "record 2 is missing",
  ]);
});

Deno.test("after pruning the chain verifies from the anchor; a forged start does not", () => {
  const all = chain(1, 10);
  const kept = all.slice(4);
  const anchor = anchorOf(kept, all[3]);
  assert.equal(verifyChain(kept, anchor).ok, true);
  // Everything pruned: the anchor is the head.
  assert.equal(verifyChain([], anchorOf([], all[9])).ok, true);
  // A chain made up from seq 5 on, not chained to what was pruned.
  const forged = chain(5, 10, "f".repeat(64));
  assert.deepEqual(messages(forged, { ...anchor, head_hash: forged.at(-1)!.hash }), [
    "record 5 does not belong here: it is not chained to the last pruned record (4)",
  ]);
});

Deno.test("a partial export is checked as far as it goes", () => {
  const records = chain(1, 10);
  const anchor = anchorOf(records);
  // Since a time: starts at 6, the front is not held against the anchor.
  assert.equal(verifyChain(records.slice(5), anchor, { partialFront: true }).ok, true);
  assert.equal(verifyChain([], anchor, { partialFront: true }).ok, true);
  // Cut by a limit: stops at 4, the tail is not held against the head.
  assert.equal(verifyChain(records.slice(0, 4), anchor, { partialTail: true }).ok, true);
  // Still, what is there must be intact.
  const slice = records.slice(5);
  slice[1] = { ...slice[1], actor_subject: "mallory" };
  assert.deepEqual(messages(slice, anchor, { partialFront: true }), [
    "record 7 was edited (its content no longer matches its hash)",
  ]);
});

Deno.test("problems past the cap are counted, not kept", () => {
  const records = chain(1, 20).map((r) => ({ ...r, outcome: "edited" }));
  const result = verifyChain(records, anchorOf(chain(1, 20)), { maxProblems: 5 });
  assert.equal(result.problems.length, 5);
  assert.equal(result.moreProblems, 15);
  assert.equal(result.ok, false);
});
