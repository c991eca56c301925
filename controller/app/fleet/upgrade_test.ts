import assert from "node:assert/strict";
import type { Queryable } from "../../store/db.ts";
import { confirmUpgrade } from "./upgrade.ts";

/** A host that never comes back: the record says disconnected, on the old version. */
const neverBack: Queryable = {
  query: <T>() =>
    Promise.resolve([{
      status: "disconnected",
      status_since: new Date(0),
      capabilities: { agent_version: "1.0.0" },
    }] as T[]),
};

Deno.test("confirmUpgrade() watches for the deadline the operator asked, not the host's answer", async () => {
  const ok = { status: "ok" as const, detail: "", exitCode: 0 };
  // The answer claims a deadline of ~31 years: trusted, it would hold the wave open that long.
  const reply = {
    status: "switched" as const,
    from: "1.0.0",
    to: "1.1.0",
    connect_deadline_secs: 1e9,
  };
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    confirmUpgrade(neverBack, "n1", ok, reply, new Date(), 1, 0),
    new Promise<"hung">((resolve) => timer = setTimeout(() => resolve("hung"), 5_000)),
  ]);
  clearTimeout(timer);
  assert.notEqual(outcome, "hung");
  assert.equal(outcome !== "hung" && outcome.status, "timed_out");
  assert.ok(Date.now() - started < 3_000);
});
