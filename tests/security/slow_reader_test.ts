// End to end: a real daemon floods stdout (`head -c 200M /dev/zero`) and the operator reads the
// REST exec stream very slowly, then not at all. The controller must hold only a bounded amount
// (the call's queue, with HTTP/2 and TCP flow control behind it back to the node), end the call
// with a clear cut-off, and record it as cut_off, never ok.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { enrollNewHost } from "../support/host.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { rssMiB, RssWatch } from "./wire.ts";

/** What the controller may grow by while 200 MB are pushed at a reader that does not keep up. */
const BOUND_MIB = 96;
const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test(
  `[${TEST_DB_KIND}] a slow exec reader does not grow controller memory; the call is cut off`,
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrollNewHost(controller);
    try {
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const token = await controller.operatorToken("team-a", "operator");
      // Warm up (JIT, heap, connections) with a flood read at full speed, so the baseline is the
      // controller's working size and the growth below is what the slow reader costs.
      const warm = await controller.api(`/v1/edge/hosts/${nodeId}/exec`, {
        method: "POST",
        token,
        body: JSON.stringify({
          argv: ["head", "-c", "32M", "/dev/zero"],
          max_output_bytes: 64 * MIB,
        }),
      });
      for await (const _ of warm.body!) { /* read at full speed */ }
      const pid = controller.process.child.pid;
      const baseline = rssMiB(pid);
      const watch = new RssWatch(pid, baseline + BOUND_MIB, () => {});

      const response = await controller.api(`/v1/edge/hosts/${nodeId}/exec`, {
        method: "POST",
        token,
        body: JSON.stringify({
          argv: ["head", "-c", "200M", "/dev/zero"],
          max_output_bytes: 64 * MIB,
          timeout_secs: 60,
        }),
      });
      assert.equal(response.status, 200);
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let rest = "";
      let wireBytes = 0;
      const lines: Array<Record<string, unknown>> = [];
      const take = (chunk: Uint8Array) => {
        wireBytes += chunk.length;
        rest += decoder.decode(chunk, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          if (!line) continue;
          const event = JSON.parse(line);
          // Output lines are only counted: keeping 200 MB of base64 here would measure us.
          if (event.type === "stdout") event.data = (event.data as string).length;
          lines.push(event);
        }
      };
      // Slowly for 2 s, then not at all for 12 s (past the controller's 10 s stall limit).
      const slowUntil = Date.now() + 2000;
      while (Date.now() < slowUntil) {
        const { value, done } = await reader.read();
        if (done) break;
        take(value);
        await sleep(100);
      }
      const slowBytes = wireBytes;
      await sleep(12_000);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        take(value);
      }
      const peak = watch.stop();

      const stdoutBase64 = lines
        .filter((e) => e.type === "stdout")
        .reduce((n, e) => n + (e.data as number), 0);
      const error = lines.find((e) => e.type === "error")?.error as
        | { code: string; message: string; details?: Record<string, string> }
        | undefined;
      console.log(
        `controller RSS ${baseline.toFixed(0)} -> peak ${peak.toFixed(0)} MiB ` +
          `(bound +${BOUND_MIB}); read ${(slowBytes / MIB).toFixed(1)} MiB slowly, ` +
          `${(stdoutBase64 * 0.75 / MIB).toFixed(1)} MiB of output in all; ended: ${error?.code}`,
      );
      assert.ok(
        peak - baseline <= BOUND_MIB,
        `controller grew by ${(peak - baseline).toFixed(0)} MiB`,
      );
      assert.equal(lines.find((e) => e.type === "exit"), undefined, "the call ended as if whole");
      assert.equal(error?.code, "OUTPUT_LIMIT", JSON.stringify(error));
      assert.equal(error?.details?.reason, "slow_reader");
      assert.ok(stdoutBase64 * 0.75 < 64 * MIB, "all of max_output_bytes was delivered");

      const history = await controller.api(`/v1/edge/hosts/${nodeId}/history`, { token });
      const rows = (await history.json()).history as Array<Record<string, unknown>>;
      const callId = lines.find((e) => e.type === "started")?.call_id;
      assert.equal(rows.find((r) => r.call_id === callId)?.status, "cut_off");
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
