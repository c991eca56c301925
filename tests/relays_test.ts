// Two relay coordinators and a controller on one real PostgreSQL: daemons spread over both
// relays, commands started anywhere reach them through LISTEN/NOTIFY, and when a relay dies its
// daemons move to the other. PGlite is one process's database, so this runs on PostgreSQL only.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "./support/controller.ts";
import { enrollNewHost, type Host } from "./support/host.ts";
import { AGENT_MAIN, eventually, freePort, runDeno } from "./support/processes.ts";
import { TEST_DB_KIND, testDatabase } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = {
  sanitizeOps: false,
  sanitizeResources: false,
  // Needs a database several processes share: runs when AEGIS_TEST_PG_DSN is set (as in CI).
  ignore: TEST_DB_KIND !== "postgres",
};

Deno.test(`[${TEST_DB_KIND}] two relays and a controller share one PostgreSQL`, opts, async () => {
  const db = await testDatabase();
  const shared = await Deno.makeTempDir({ prefix: "aegis-relays-" });
  const signingKeyFile = `${shared}/signing-key.jwk`;
  const [p1, p2] = [freePort(), freePort()];
  const relayList = `http://127.0.0.1:${p1},http://127.0.0.1:${p2}`;
  const common = {
    db,
    signingKeyFile,
    publicEndpoint: relayList,
    edge: "attest_rate_limit_per_min: 100",
  };
  const processes: ControllerProcess[] = [];
  const hosts: Host[] = [];
  try {
    const controller = await startControllerProcess({ ...common, nodeName: "controller" });
    processes.push(controller);
    const relay1 = await startControllerProcess({
      ...common,
      role: "relay-coordinator",
      port: p1,
      nodeName: "relay-1",
    });
    processes.push(relay1);
    const relay2 = await startControllerProcess({
      ...common,
      role: "relay-coordinator",
      port: p2,
      nodeName: "relay-2",
    });
    processes.push(relay2);

    // Host A lists relay-1 first, host B relay-2 first: one daemon on each relay.
    const enroll = async (reverse: boolean) => {
      const { host, nodeId } = await enrollNewHost(controller);
      hosts.push(host);
      if (reverse) {
        const path = `${host.home}/.aegis/edge/aegis-config.yaml`;
        const text = await Deno.readTextFile(path);
        await Deno.writeTextFile(
          path,
          text.replace(
            `  endpoints:\n    - http://127.0.0.1:${p1}\n    - http://127.0.0.1:${p2}\n`,
            `  endpoints:\n    - http://127.0.0.1:${p2}\n    - http://127.0.0.1:${p1}\n`,
          ),
        );
      }
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      return { host, nodeId, daemon };
    };
    const a = await enroll(false);
    const b = await enroll(true);
    assert.match(a.daemon.stderr, new RegExp(`stream connected to 127\\.0\\.0\\.1:${p1}`));
    assert.match(b.daemon.stderr, new RegExp(`stream connected to 127\\.0\\.0\\.1:${p2}`));

    const env = {
      HOME: a.host.home,
      AEGIS_ENDPOINT: controller.endpoint,
      AEGIS_TOKEN: await controller.operatorToken("team-a", "operator"),
    };
    // Commands started on the controller (which holds no stream) reach both relays' daemons.
    for (const node of [a, b]) {
      const out = await runDeno(AGENT_MAIN, [
        "edge",
        "exec",
        node.nodeId,
        "--",
        "sh",
        "-c",
        "echo via-bus; exit 7",
      ], env);
      assert.equal(out.code, 7, out.stderr);
      assert.equal(out.stdout, "via-bus\n");
    }
    // A fleet operation too, started on a relay this time.
    const fleet = await runDeno(AGENT_MAIN, [
      "edge",
      "fleet",
      "exec",
      "--target",
      "all",
      "--mode",
      "parallel",
      "--output",
      "json",
      "--",
      "true",
    ], { ...env, AEGIS_ENDPOINT: relay1.endpoint });
    assert.equal(fleet.code, 0, fleet.stdout + fleet.stderr);
    assert.equal(JSON.parse(fleet.stdout).counts.ok, 2);

    // relay-1 dies: its daemon moves to relay-2 by itself, and commands reach it again.
    await relay1.process.stop("SIGKILL");
    await a.daemon.waitFor(new RegExp(`stream connected to 127\\.0\\.0\\.1:${p2}`), 30_000);
    await eventually(
      async () => {
        const out = await runDeno(AGENT_MAIN, ["edge", "exec", a.nodeId, "--", "true"], env);
        return out.code === 0 || undefined;
      },
      "exec after failover",
      30_000,
    );

    // Revocation from the controller drops a stream held by a relay, at once.
    const revoked = await runDeno(AGENT_MAIN, ["edge", "keys", "revoke-remote", b.nodeId], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    await b.daemon.waitFor(/was revoked/, 5000);
  } finally {
    for (const host of hosts) await host.cleanup();
    for (const p of processes) await p.process.stop().catch(() => {});
    await db.cleanup();
    await Deno.remove(shared, { recursive: true });
    for (const p of processes) await Deno.remove(p.dataDir, { recursive: true }).catch(() => {});
  }
});
