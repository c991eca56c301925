// End to end: `aegis edge fleet upgrade` sends `node.update` over the stream; the daemon runs the
// update path, exits into the new binary under its supervisor, and the controller counts the
// node ok only when it reconnects on the new version. A release whose daemon cannot connect
// is rolled back by the host alone, and the controller reports it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AGENT_MAIN, runDeno } from "../support/processes.ts";
import { goodRelease, NEW, OLD, type Scene, scene, teardown, unreachableRelease } from "./scene.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function fleetUpgrade(s: Scene, extra: string[] = []) {
  const token = await s.controller.operatorToken("team-a");
  const started = Date.now();
  const out = await runDeno(AGENT_MAIN, [
    "edge",
    "fleet",
    "upgrade",
    "--target",
    s.host.nodeId,
    "--mode",
    "parallel",
    "--output",
    "json",
    ...extra,
  ], {
    HOME: s.work,
    AEGIS_ENDPOINT: s.controller.endpoint,
    AEGIS_TOKEN: token,
  });
  return { out, seconds: (Date.now() - started) / 1000 };
}

Deno.test("fleet upgrade: the host switches and reconnects on the new version", opts, async () => {
  const s = await scene(goodRelease);
  try {
    const before = await s.host.state();
    const { out, seconds } = await fleetUpgrade(s, ["--version", NEW]);
    assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}\n${s.host.supervisor.stderr}`);
    const report = JSON.parse(out.stdout);
    assert.equal(report.results[0].status, "ok");
    assert.equal(report.results[0].detail, `upgraded ${OLD} → ${NEW}`);
    console.log(`fleet upgrade of one host ${OLD} → ${NEW}: ${seconds.toFixed(1)}s`);
    const after = await s.host.waitConnected(NEW, before?.pid);
    assert.equal(after.supervised, true);
    assert.equal((await s.host.installed()).current, join("versions", NEW));

    // Again: the host is at the served version already and nothing restarts.
    const again = await fleetUpgrade(s);
    assert.equal(again.out.code, 0, again.out.stderr);
    assert.equal(JSON.parse(again.out.stdout).results[0].detail, `already at ${NEW}`);
    assert.equal((await s.host.state())?.pid, after.pid);
  } finally {
    await teardown(s);
  }
});

Deno.test(
  "fleet upgrade: a release that cannot connect is rolled back by the host",
  opts,
  async () => {
    const s = await scene(unreachableRelease);
    try {
      const before = await s.host.state();
      const { out, seconds } = await fleetUpgrade(s, ["--connect-deadline", "6s"]);
      assert.equal(out.code, 1, `${out.stdout}\n${out.stderr}\n${s.host.supervisor.stderr}`);
      const result = JSON.parse(out.stdout).results[0];
      assert.equal(result.status, "failed");
      assert.match(result.detail, /rolled back/);
      console.log(`fleet upgrade rolled back on the host: reported after ${seconds.toFixed(1)}s`);
      const after = await s.host.waitConnected(OLD, before?.pid);
      assert.equal(after.version, OLD);
      assert.equal((await s.host.installed()).current, join("versions", OLD));
    } finally {
      await teardown(s);
    }
  },
);
