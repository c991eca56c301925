import assert from "node:assert/strict";
import { parseTarget } from "./target.ts";
import { targetNote, targetSource } from "./provenance.ts";

Deno.test("targetSource() calls labels self-reported and tags operator-controlled", () => {
  assert.equal(targetSource(parseTarget("labels=region:eu")), "self-reported");
  assert.equal(targetSource(parseTarget("tags=AnyOf(prod)")), "operator-controlled");
  assert.equal(targetSource(parseTarget("all")), "explicit");
  assert.equal(targetSource(parseTarget("n-0123abcd")), "explicit");
  assert.match(targetNote("self-reported")!, /self-reported.*tags are operator-controlled/);
  assert.equal(targetNote("operator-controlled"), undefined);
});
