// PostgreSQL goes away under a controller and two relay coordinators that share it: a fast
// restart, then a stop of several seconds and a start. None of the three processes is restarted.
// They must keep running, answer "unavailable" at once (503 UNREACHABLE, never 500 INTERNAL,
// never a hang) while the database is down, keep the daemons' streams (a heartbeat that cannot
// be written is no reason to drop a node), and as soon as it is back: drop a revoked node's
// stream on the other relay (LISTEN/NOTIFY: the LISTEN connection must be back too), run a call
// entering one relay for a node held by the other (relay peering), and enroll hosts.
//
// Runs on a private server (tests/support/private_postgres.ts), never the shared one, so it does
// does not use AEGIS_TEST_PG_DSN's server; it runs in the PostgreSQL pass of the suite (the one
// with AEGIS_TEST_PG_DSN set: the PGlite pass would only repeat it) wherever PostgreSQL binaries
// are installed, and is skipped with the reason otherwise.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host, makeHost } from "../support/host.ts";
import { type Background, eventually, freePort } from "../support/processes.ts";
import { TEST_DB_KIND, type TestDatabase } from "../support/db.ts";
import { openDb } from "../../controller/store/db.ts";
import {
  type PrivatePostgres,
  privatePostgresUnavailable,
  startPrivatePostgres,
} from "../support/private_postgres.ts";

const unavailable = privatePostgresUnavailable();
if (unavailable) console.warn(`postgres_restart_test skipped: ${unavailable}`);

const opts = {
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: unavailable !== undefined || TEST_DB_KIND !== "postgres",
};

function privateDatabase(pg: PrivatePostgres): TestDatabase {
  return {
    kind: "postgres",
    dsn: pg.dsn,
    open: () => openDb({ dsn: pg.dsn }),
    cleanup: async () => {},
  };
}

/** Resolves with the exit status if the process has ended, else undefined. */
async function exited(process: Background): Promise<Deno.CommandStatus | undefined> {
  return await Promise.race([
    process.child.status,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50)),
  ]);
}

interface Exec {
  status: number;
  exitCode?: number;
  stdout: string;
  error?: { code: string; message: string };
}

async function exec(
  relay: ControllerProcess,
  token: string,
  nodeId: string,
  argv: string[],
): Promise<Exec> {
  const response = await relay.api(`/v1/edge/hosts/${nodeId}/exec`, {
    method: "POST",
    token,
    body: JSON.stringify({ argv }),
  });
  const text = await response.text();
  if (response.status !== 200) {
    return { status: response.status, stdout: "", error: JSON.parse(text).error };
  }
  const result: Exec = { status: 200, stdout: "" };
  for (const line of text.split("\n").filter(Boolean)) {
    const event = JSON.parse(line);
    if (event.type === "stdout") result.stdout += atob(event.data);
    if (event.type === "exit") result.exitCode = event.exit_code;
    if (event.type === "error") result.error = event.error;
  }
  return result;
}

Deno.test(
  "[postgres] controllers and relays ride out a PostgreSQL restart and a 5 s outage",
  opts,
  async (t) => {
    const pg = await startPrivatePostgres();
    const db = privateDatabase(pg);
    const shared = await Deno.makeTempDir({ prefix: "aegis-pg-restart-" });
    const [p1, p2] = [freePort(), freePort()];
    const common = {
      db,
      signingKeyFile: `${shared}/signing-key.jwk`,
      publicEndpoint: `http://127.0.0.1:${p1},http://127.0.0.1:${p2}`,
      // The relays' own revalidation sweep runs once per heartbeat interval (30 s): a revoked
      // stream that drops within seconds was dropped by the notification.
      edge: "attest_rate_limit_per_min: 1000\nheartbeat_interval_secs: 30",
    };
    const processes: ControllerProcess[] = [];
    const hosts: Host[] = [];
    let passed = false;
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
      const pids = processes.map((p) => p.process.child.pid);
      const token = await controller.operatorToken("team-a", "admin");

      /** A new host whose daemon holds its stream on relay-2 (its endpoint list reversed). */
      const onRelay2 = async (name: string, heartbeatSecs = 30) => {
        const { host, nodeId } = await enrollNewHost(controller, { name });
        hosts.push(host);
        const path = `${host.home}/.aegis/edge/aegis-config.yaml`;
        const text = await Deno.readTextFile(path);
        const edited = text.replace(
          `  endpoints:\n    - http://127.0.0.1:${p1}\n    - http://127.0.0.1:${p2}\n`,
          `  endpoints:\n    - http://127.0.0.1:${p2}\n    - http://127.0.0.1:${p1}\n`,
        ).replace("heartbeat_interval_secs: 30", `heartbeat_interval_secs: ${heartbeatSecs}`);
        assert.match(edited, new RegExp(`endpoints:\\n {4}- http://127\\.0\\.0\\.1:${p2}\\n`));
        assert.match(edited, new RegExp(`heartbeat_interval_secs: ${heartbeatSecs}\\n`));
        await Deno.writeTextFile(path, edited);
        const daemon = host.startDaemon();
        await daemon.waitFor(new RegExp(`stream connected to 127\\.0\\.0\\.1:${p2}`), 30_000);
        return { host, nodeId, daemon };
      };
      // Heartbeats every second: an outage of seconds spans several of them.
      const held = await onRelay2("held-by-relay-2", 1);
      const connects = () => held.daemon.stderr.match(/stream connected/g)?.length ?? 0;

      /**
       * Everything that must work once the database answers again (at `back`): a victim connected
       * to relay-2 before the outage is revoked on relay-1 and dropped by relay-2, a call crosses
       * relays, a host enrolls. Every one within a few seconds.
       */
      const afterwards = async (
        label: string,
        back: number,
        victim: { nodeId: string; daemon: Background },
      ) => {
        // Until the database answers, only "unavailable" is acceptable; anything else is kept.
        const unexpected: string[] = [];
        const revoke = await eventually(
          async () => {
            const response = await relay1.api(`/v1/edge/hosts/${victim.nodeId}/revoke`, {
              method: "POST",
              token,
              body: "{}",
            });
            const body = await response.text();
            if (response.status === 200) return body;
            if (response.status !== 503) unexpected.push(`revoke: ${response.status} ${body}`);
          },
          `${label}: revocation`,
          30_000,
        );
        assert.match(revoke, /"revoked":true/);
        const revokedAt = performance.now();
        await victim.daemon.waitFor(/was revoked/, 30_000);
        const dropMs = performance.now() - revokedAt;
        const revokeMs = revokedAt - back;

        const call = await eventually(
          async () => {
            const out = await exec(relay1, token, held.nodeId, ["echo", `across-${label}`]);
            if (out.exitCode === 0) return out;
            assert.ok([503, 200].includes(out.status), JSON.stringify(out));
          },
          `${label}: a call across relays`,
          30_000,
        );
        assert.equal(call.stdout, `across-${label}\n`);
        const callMs = performance.now() - back;

        await eventually(
          async () => {
            const { host } = await enrollNewHost(controller, { name: `${label}-probe` });
            hosts.push(host);
            return true;
          },
          `${label}: enrollment`,
          30_000,
        );
        const enrollMs = performance.now() - back;
        console.log(
          `${label}: after the database was back, revoked in ${revokeMs.toFixed(0)} ms and ` +
            `relay-2 dropped the stream ${dropMs.toFixed(0)} ms later; cross-relay call ok at ` +
            `${callMs.toFixed(0)} ms, enrollment ok at ${enrollMs.toFixed(0)} ms`,
        );
        assert.deepEqual(unexpected, []);
        assert.ok(dropMs < 3000, `${label}: relay-2 dropped the revoked stream after ${dropMs} ms`);
        assert.ok(revokeMs < 5000, `${label}: revocation worked ${revokeMs} ms after`);
        assert.ok(callMs < 8000, `${label}: the cross-relay call worked ${callMs} ms after`);
        for (const [i, p] of processes.entries()) {
          assert.equal(await exited(p.process), undefined, `${p.endpoint} is still running`);
          assert.equal(p.process.child.pid, pids[i], "never restarted");
        }
        assert.equal(connects(), 1, `the held stream was never dropped:\n${held.daemon.stderr}`);
      };

      assert.ok(
        await t.step("baseline", async () => {
          const victim = await onRelay2("victim-0");
          await afterwards("baseline", performance.now(), victim);
        }),
        "baseline",
      );

      assert.ok(
        await t.step("pg_ctl restart -m fast", async () => {
          const victim = await onRelay2("victim-1");
          await pg.restart("fast");
          await afterwards("restart", performance.now(), victim);
        }),
        "restart",
      );

      assert.ok(
        await t.step(
          "stop, 5 s down, start: 503 at once while down, everything after",
          async () => {
            const victim = await onRelay2("victim-2");
            const { token: enrollment } = await controller.issueEnrollment("team-a");
            await pg.stop("fast");
            const downAt = performance.now();
            // While down, all along: every process answers at once, "unavailable", never INTERNAL.
            let probes = 0;
            let slowest = 0;
            while (performance.now() - downAt < 5000) {
              for (const p of processes) {
                const started = performance.now();
                const health = await p.api("/healthz");
                assert.equal(health.status, 503, `${p.endpoint} /healthz`);
                assert.equal((await health.json()).status, "NOT_SERVING");
                const list = await p.api("/v1/edge/hosts", { token });
                const body = await list.json();
                assert.equal(list.status, 503, `${p.endpoint}: ${JSON.stringify(body)}`);
                assert.equal(body.error.code, "UNREACHABLE");
                slowest = Math.max(slowest, performance.now() - started);
                probes++;
              }
              const call = await exec(relay1, token, held.nodeId, ["true"]);
              assert.equal(call.status, 503, JSON.stringify(call));
              assert.equal(call.error?.code, "UNREACHABLE");
              await new Promise((r) => setTimeout(r, 200));
            }
            // gRPC too: enrolling is refused as UNAVAILABLE (exit 69, retryable), not INTERNAL (70).
            const newcomer = await makeHost();
            hosts.push(newcomer);
            const enroll = await newcomer.aegis([
              "edge",
              "enroll",
              enrollment,
              "--non-interactive",
              "--no-service",
            ]);
            assert.equal(enroll.code, 69, enroll.stderr);
            assert.match(enroll.stderr, /cannot reach PostgreSQL/);
            console.log(`outage: ${probes} probes, slowest answer ${slowest.toFixed(0)} ms`);
            assert.ok(slowest < 2000, `a request during the outage took ${slowest} ms`);
            await pg.start();
            await afterwards("outage", performance.now(), victim);
          },
        ),
        "outage",
      );

      for (const p of processes) {
        assert.doesNotMatch(p.process.stderr, /internal error/, `${p.endpoint} logged INTERNAL`);
      }
      passed = true;
    } finally {
      if (!passed) {
        for (const p of processes) console.error(`--- ${p.endpoint}\n${p.process.stderr}`);
        console.error(`--- postgres\n${await pg.log()}`);
      }
      for (const host of hosts) await host.cleanup();
      for (const p of processes) await p.stop().catch(() => {});
      await pg.cleanup();
      await Deno.remove(shared, { recursive: true }).catch(() => {});
    }
  },
);
