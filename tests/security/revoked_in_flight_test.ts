// A call in flight when its host is revoked ends at once, typed as a revocation: the caller is not
// left waiting for the deadline, and is not told the host merely went offline.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrollNewHost } from "../support/host.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] a call in flight on a revoked host ends at once with NODE_REVOKED`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrollNewHost(controller);
    try {
      await host.startDaemon().waitFor(/stream connected/, 30_000);
      const token = await controller.operatorToken("team-a", "operator");
      const response = await controller.api(`/v1/edge/hosts/${nodeId}/exec`, {
        method: "POST",
        token,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ shell: "sleep 60", timeout_secs: 90 }),
      });
      assert.equal(response.status, 200);
      const lines = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes('"started"')) {
        const { value, done } = await lines.read();
        if (done) break;
        text += value;
      }
      assert.match(text, /"started"/, text);

      const began = Date.now();
      const revoked = await controller.api(`/v1/edge/hosts/${nodeId}/revoke`, {
        method: "POST",
        token,
      });
      assert.equal(revoked.status, 200, await revoked.text());
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        text += value;
      }
      const elapsed = Date.now() - began;
      const last = JSON.parse(text.trim().split("\n").at(-1)!);
      assert.equal(last.type, "error", text);
      assert.equal(last.error.code, "NODE_REVOKED", text);
      assert.ok(elapsed < 10_000, `the caller waited ${elapsed} ms after the revocation`);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
