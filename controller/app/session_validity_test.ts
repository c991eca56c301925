import assert from "node:assert/strict";
import { type CredentialState, judgeStream, overlapLeftMs } from "./session_validity.ts";

const now = new Date("2026-01-01T12:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms);
const OVERLAP = 60_000;
const creds = { nodeId: "n-1", jti: "j-1", fingerprint: "SHA256:old" };
const record: CredentialState = {
  node_id: "n-1",
  status: "connected",
  key_fingerprint: "SHA256:old",
  previous_key_fingerprint: null,
  rotated_at: null,
  token_revoked_at: null,
};

Deno.test("judgeStream() lets a stream on the node's current credentials go on", () => {
  assert.equal(judgeStream(creds, record, now, OVERLAP), undefined);
});

Deno.test("judgeStream() ends the stream of a revoked or deleted node with NODE_REVOKED", () => {
  assert.equal(
    judgeStream(creds, { ...record, status: "revoked" }, now, OVERLAP)?.code,
    "NODE_REVOKED",
  );
  assert.equal(judgeStream(creds, undefined, now, OVERLAP)?.code, "NODE_REVOKED");
});

Deno.test("judgeStream() keeps a replaced token for the overlap window, then ends it", () => {
  const replaced = (ms: number) => ({ ...record, token_revoked_at: ago(ms) });
  assert.equal(judgeStream(creds, replaced(OVERLAP - 1), now, OVERLAP), undefined);
  assert.equal(judgeStream(creds, replaced(OVERLAP), now, OVERLAP)?.code, "NODE_TOKEN_INVALID");
});

Deno.test("judgeStream() keeps the key a rotation replaced for the overlap window only", () => {
  const rotated = (ms: number): CredentialState => ({
    ...record,
    key_fingerprint: "SHA256:new",
    previous_key_fingerprint: "SHA256:old",
    rotated_at: ago(ms),
  });
  assert.equal(judgeStream(creds, rotated(1000), now, OVERLAP), undefined);
  assert.equal(judgeStream(creds, rotated(OVERLAP + 1), now, OVERLAP)?.code, "KEY_TOKEN_MISMATCH");
  const foreign = { ...creds, fingerprint: "SHA256:other" };
  assert.equal(judgeStream(foreign, rotated(1000), now, OVERLAP)?.code, "KEY_TOKEN_MISMATCH");
});

Deno.test("overlapLeftMs() is the rest of the window for a replaced token only", () => {
  assert.equal(overlapLeftMs(record, now, OVERLAP), undefined);
  assert.equal(overlapLeftMs({ ...record, token_revoked_at: ago(20_000) }, now, OVERLAP), 40_000);
  assert.equal(overlapLeftMs({ ...record, token_revoked_at: ago(90_000) }, now, OVERLAP), 0);
});
