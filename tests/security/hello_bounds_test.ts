// A node declares its labels and capabilities in Hello; the controller stores and shows them, so
// it bounds them. A daemon whose config (valid for the daemon) declares more labels than that is
// refused with a clear error that ends the stream, and nothing of it is stored.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { makeHost } from "../support/host.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { editHostConfig } from "./live_streams.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(`[${TEST_DB_KIND}] a Hello with too many labels is refused, clearly`, opts, async () => {
  const controller = await startControllerProcess();
  const host = await makeHost();
  try {
    const { token } = await controller.issueEnrollment("team-a");
    const out = await host.aegis(["edge", "enroll", token, "--non-interactive", "--no-service"]);
    assert.equal(out.code, 0, out.stderr);
    const nodeId = out.stdout.match(/Attested as node (n-[0-9a-f]+)/)![1];
    // 500 labels of 256 characters: each one valid, together about 130 KB per Hello.
    const labels = Array.from({ length: 500 }, (_, i) => `    l${i}: "${"x".repeat(256)}"\n`);
    await editHostConfig(host, (text) => {
      assert.match(text, /^ {2}labels:.*\n/m, "the host config changed shape");
      return text.replace(/^ {2}labels:.*\n/m, `  labels:\n${labels.join("")}`);
    });
    const daemon = host.startDaemon();
    await daemon.waitFor(/refused this node: Hello refused: 50\d labels \(at most 64\)/, 30_000);
    assert.equal((await daemon.child.status).success, false, "the daemon should stop");
    const view = await controller.api(`/v1/edge/hosts/${nodeId}`, {
      token: await controller.operatorToken("team-a"),
    });
    const record = await view.json();
    assert.notEqual(record.status, "Connected");
    assert.equal(Object.keys(record.labels).length < 64, true, "the labels were stored");
  } finally {
    await host.cleanup();
    await controller.stop();
  }
});
