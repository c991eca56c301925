// `aegis audit verify --file`: a saved export checked on this machine, without a controller.
import assert from "node:assert/strict";
import type { Io } from "../../shared/cli/io.ts";
import { AegisError, ERROR_CODES } from "../../shared/errors.ts";
import { type AuditRecord, chainRecord, GENESIS_HASH } from "../../shared/audit_chain.ts";
import { auditVerify } from "./audit.ts";

function chain(count: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const record = chainRecord(prev, {
      tenant_id: "team-a",
      seq,
      recorded_at: new Date(Date.UTC(2026, 4, 1, 0, 0, seq)).toISOString(),
      retain_until: new Date(Date.UTC(2026, 7, 1, 0, 0, seq)).toISOString(),
      actor_kind: "operator",
      actor_issuer: "aegis",
      actor_subject: "alice",
      actor_context: "aegis-system-operator",
      action: "tool.call",
      target: `n-1 cmd.run #${seq}`,
      outcome: "ok",
      detail: null,
      execution_id: null,
      relay_id: "r1",
    });
    records.push(record);
    prev = record.hash;
  }
  return records;
}

/** The export file the controller would have sent for these records. */
function exportText(
  records: AuditRecord[],
  head = records.at(-1)!,
  extra: { since?: string | null; limit?: number | null; end?: boolean } = {},
): string {
  const anchor = {
    type: "anchor",
    tenant_id: "team-a",
    pruned_through_seq: 0,
    pruned_through_hash: GENESIS_HASH,
    head_seq: head.seq,
    head_hash: head.hash,
    since: extra.since ?? null,
    limit: extra.limit ?? null,
  };
  const lines = [anchor, ...records.map((r) => ({ type: "record", ...r }))];
  if (extra.end !== false) lines.push({ type: "end", records: records.length } as never);
  return lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
}

async function verify(text: string, output = "text") {
  const dir = await Deno.makeTempDir({ prefix: "aegis-audit-cli-" });
  const file = `${dir}/export.ndjson`;
  await Deno.writeTextFile(file, text);
  let out = "";
  const io: Io = { out: (t) => void (out += t), err: () => {}, interactive: false };
  try {
    const code = await auditVerify({ file, output }, io);
    return { code, out };
  } catch (error) {
    if (!(error instanceof AegisError)) throw error;
    return { code: error.exitCode, out, error };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("an intact saved export verifies and says how far", async () => {
  const { code, out } = await verify(exportText(chain(12)));
  assert.equal(code, 0);
  assert.equal(out, "audit log of tenant team-a: 12 records intact (seq 1..12)\n");
});

Deno.test("each problem in a saved export is printed, and the exit says broken", async () => {
  const records = chain(10);
  const head = records[9];
  const tampered = records.filter((r) => r.seq !== 5 && r.seq !== 10);
  tampered[5] = { ...tampered[5], outcome: "refused" }; // seq 7
  const { code, out, error } = await verify(exportText(tampered, head));
  assert.equal(code, ERROR_CODES.AUDIT_CHAIN_BROKEN.exit);
  assert.equal(
    out,
    "✖ record 5 is missing\n" +
      "✖ record 7 was edited (its content no longer matches its hash)\n" +
      "✖ record 10 is missing (it was the newest)\n",
  );
  assert.equal(error?.code, "AUDIT_CHAIN_BROKEN");
  assert.match(error!.message, /team-a is broken: 3 problem\(s\) in 8 record\(s\) read/);

  const json = await verify(exportText(tampered, head), "json");
  assert.equal(json.code, ERROR_CODES.AUDIT_CHAIN_BROKEN.exit);
  assert.deepEqual(JSON.parse(json.out).problems.map((p: { kind: string }) => p.kind), [
    "missing",
    "edited",
    "tail_missing",
  ]);
});

Deno.test("partial exports are checked as far as they go, and say so", async () => {
  const records = chain(10);
  const since = await verify(
    exportText(records.slice(6), records[9], { since: "2026-05-01T00:00:07.000Z" }),
  );
  assert.equal(since.code, 0);
  assert.match(since.out, /4 records intact \(seq 7\.\.10\)/);
  assert.match(since.out, /earlier ones not checked/);
  const limited = await verify(exportText(records.slice(0, 4), records[9], { limit: 4 }));
  assert.equal(limited.code, 0);
  assert.match(limited.out, /4 records intact \(seq 1\.\.4\); export cut at 4 records/);
});

Deno.test("a cut-off or malformed file is refused, not judged", async () => {
  const records = chain(3);
  const cut = await verify(exportText(records, records[2], { end: false }));
  assert.equal(cut.error?.code, "INVALID_ARGUMENT");
  assert.match(cut.error!.message, /ends before its end line: it was cut short/);

  const noAnchor = await verify(exportText(records).split("\n").slice(1).join("\n"));
  assert.match(noAnchor.error!.message, /does not start with its anchor line/);

  const badAnchor = await verify(exportText(records).replace(/"head_seq":3/, '"head_seq":"x"'));
  assert.match(badAnchor.error!.message, /its anchor line is not one/);

  const notJson = await verify(exportText(records).replace('{"type":"record"', "{oops"));
  assert.match(notJson.error!.message, /line 2 is not an export line/);

  const huge = await verify(`${"x".repeat(70 * 1024)}`);
  assert.match(huge.error!.message, /longer than 65536 bytes/);
});
