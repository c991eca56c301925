// A relay SIGKILLed in the middle of a long tool call that an operator started through another
// relay (`aegis edge exec` against that other relay; the node's stream is on the killed one):
// the operator hears at once, not at the call's deadline; the daemon, enrolled with both relays
// as endpoints, moves to the surviving one; new calls work. Then the other way round: the relay
// the operator is connected to dies; the operator hears at once, the relay running the call
// stops the command on the host, and the history does not show the call running forever.
// Relays need a database several processes share: PostgreSQL only, as tests/relays_test.ts.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { withEdge } from "./daemons.ts";
import { AGENT_MAIN, Background, eventually, freePort, runDeno } from "../support/processes.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";

// Relays share one PostgreSQL: this runs in the PostgreSQL pass of the suite.
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: TEST_DB_KIND !== "postgres" };

/** Whether a process whose command line contains `marker` runs on this machine. */
async function running(marker: string): Promise<boolean> {
  const out = await new Deno.Command("pgrep", { args: ["-f", marker], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim() !== "";
}

Deno.test(
  `[${TEST_DB_KIND}] a relay killed mid-call: the caller hears at once, the daemon moves, calls work`,
  opts,
  async (t) => {
    const db = await testDatabase();
    const shared = await Deno.makeTempDir({ prefix: "aegis-relay-kill-" });
    const [pA, pB] = [freePort(), freePort()];
    const endpointA = `http://127.0.0.1:${pA}`;
    const endpointB = `http://127.0.0.1:${pB}`;
    const common = {
      db,
      signingKeyFile: `${shared}/signing-key.jwk`,
      // Every host is enrolled with both relays as endpoints, relay-a first.
      publicEndpoint: `${endpointA},${endpointB}`,
      edge: "attest_rate_limit_per_min: 1000",
    };
    const processes: ControllerProcess[] = [];
    const hosts: Host[] = [];
    const calls: Background[] = [];
    let passed = false;
    try {
      const controller = await startControllerProcess({ ...common, nodeName: "controller" });
      processes.push(controller);
      const relayA = await startControllerProcess({
        ...common,
        role: "relay-coordinator",
        port: pA,
        nodeName: "relay-a",
      });
      processes.push(relayA);
      const relayB = await startControllerProcess({
        ...common,
        role: "relay-coordinator",
        port: pB,
        nodeName: "relay-b",
      });
      processes.push(relayB);

      const { host, nodeId, stdout } = await enrollNewHost(controller);
      hosts.push(host);
      assert.match(
        await Deno.readTextFile(`${host.home}/.aegis/edge/aegis-config.yaml`),
        new RegExp(`endpoints:\\n {4}- ${endpointA}\\n {4}- ${endpointB}\\n`),
        stdout,
      );
      // Heartbeats every 3 s: an orphaned command is stopped within one of them.
      const configPath = `${host.home}/.aegis/edge/aegis-config.yaml`;
      await Deno.writeTextFile(
        configPath,
        withEdge({ heartbeat_interval_secs: 3 })(await Deno.readTextFile(configPath)),
      );
      const daemon = host.startDaemon();
      await daemon.waitFor(new RegExp(`stream connected to 127\\.0\\.0\\.1:${pA}`), 30_000);

      const token = await controller.operatorToken("team-a", "operator");
      const operator = { HOME: host.home, AEGIS_TOKEN: token };
      /** `aegis edge exec` through `relay`, as an operator would run it. */
      const exec = (relay: ControllerProcess, args: string[]) => {
        const call = new Background(AGENT_MAIN, ["edge", "exec", nodeId, ...args], {
          ...operator,
          AEGIS_ENDPOINT: relay.endpoint,
        });
        calls.push(call);
        return call;
      };
      const quick = (relay: ControllerProcess) =>
        runDeno(AGENT_MAIN, ["edge", "exec", nodeId, "--", "echo", "ok"], {
          ...operator,
          AEGIS_ENDPOINT: relay.endpoint,
        });
      const history = async (relay: ControllerProcess) => {
        const response = await relay.api(`/v1/edge/hosts/${nodeId}/history`, { token });
        return (await response.json()).history as Array<
          { call_id: string; status: string; summary: string; error: string | null }
        >;
      };

      await t.step("the relay holding the node's stream dies", async () => {
        const marker = `${Math.floor(Math.random() * 1e6)}.5`;
        const call = exec(relayB, [
          "--timeout",
          "120s",
          "--",
          "sh",
          "-c",
          `echo started; sleep ${marker}`,
        ]);
        await call.waitFor(/started/, 30_000);
        const killedAt = performance.now();
        await relayA.kill("SIGKILL");

        const status = await call.child.status;
        const errorMs = performance.now() - killedAt;
        await call.stop();
        console.log(
          `caller's error ${errorMs.toFixed(0)} ms after the kill: ${call.stderr.trim()}`,
        );
        assert.ok(errorMs < 5000, `the caller waited ${errorMs} ms`);
        assert.equal(status.code, 69, call.stderr);
        assert.match(call.stderr, /relay relay-a went away during the call/);

        await daemon.waitFor(new RegExp(`stream connected to 127\\.0\\.0\\.1:${pB}`), 30_000);
        const movedMs = performance.now() - killedAt;
        const retried = await eventually(
          async () => {
            const out = await quick(relayB);
            return out.code === 0 ? out : undefined;
          },
          "a call through relay-b after the move",
          30_000,
        );
        assert.equal(retried.stdout, "ok\n");
        const workingMs = performance.now() - killedAt;
        console.log(
          `daemon on relay-b ${movedMs.toFixed(0)} ms after the kill; ` +
            `calls work again at ${workingMs.toFixed(0)} ms`,
        );
        const row = (await history(relayB)).find((h) => h.summary.includes(marker));
        assert.equal(row?.status, "disconnected", JSON.stringify(row));
        // The caller was told the call failed, so nobody waits for it: the host lists it on its
        // next heartbeat to relay-b, which tells it to stop (no orphan runs to its deadline).
        await eventually(
          async () => !(await running(`sleep ${marker}`)) || undefined,
          "the orphaned command stopped",
          15_000,
        );
        assert.match(daemon.stderr, /cancelling \(nobody is waiting for this call/);
      });

      await t.step("the relay the caller is connected to dies", async () => {
        // relay-a comes back (on its port) to be the caller's relay; the node stays on relay-b.
        await relayA.start();
        const marker = `${Math.floor(Math.random() * 1e6)}.5`;
        const call = exec(relayA, [
          "--timeout",
          "120s",
          "--",
          "sh",
          "-c",
          `echo started; sleep ${marker}`,
        ]);
        await call.waitFor(/started/, 30_000);
        assert.ok(await running(`sleep ${marker}`), "the command runs on the host");
        const killedAt = performance.now();
        await relayA.kill("SIGKILL");

        const status = await call.child.status;
        const errorMs = performance.now() - killedAt;
        await call.stop();
        console.log(
          `caller's error ${errorMs.toFixed(0)} ms after the kill: ${call.stderr.trim()}`,
        );
        assert.ok(errorMs < 5000, `the caller waited ${errorMs} ms`);
        // A clear error (UNREACHABLE, exit 69) saying the connection was lost; no stack trace.
        assert.equal(status.code, 69, call.stderr);
        assert.match(call.stderr, /^✖ .*connection/m);
        assert.doesNotMatch(call.stderr, /TypeError|\n\s+at /);

        // relay-b, which ran it, lost its caller: it stops the command on the host.
        await eventually(
          async () => !(await running(`sleep ${marker}`)) || undefined,
          "the command stopped on the host",
          10_000,
        );
        const stoppedMs = performance.now() - killedAt;
        const again = await quick(relayB);
        assert.equal(again.code, 0, again.stderr);
        assert.match(daemon.stderr, new RegExp(`stream connected to 127\\.0\\.0\\.1:${pB}`));
        // Its record, whose relay is gone, does not stay "running".
        const row = await eventually(
          async () => {
            const found = (await history(relayB)).find((h) => h.summary.includes(marker));
            return found && found.status !== "running" ? found : undefined;
          },
          "the call's record to end",
          10_000,
        );
        console.log(
          `the command stopped on the host ${stoppedMs.toFixed(0)} ms after the kill; ` +
            `recorded as ${row.status}: ${row.error}`,
        );
        assert.equal(row.status, "interrupted");
        assert.match(row.error ?? "", /the relay the call came through went away/);
      });
      passed = true;
    } finally {
      if (!passed) {
        for (const p of processes) console.error(`--- ${p.endpoint}\n${p.process.stderr}`);
        for (const c of calls) console.error(`--- exec\n${c.stdout}\n${c.stderr}`);
      }
      for (const call of calls) await call.stop();
      for (const h of hosts) await h.cleanup();
      for (const p of processes) await p.stop().catch(() => {});
      await db.cleanup();
      await Deno.remove(shared, { recursive: true }).catch(() => {});
    }
  },
);
