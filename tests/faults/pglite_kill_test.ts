// The embedded PGlite controller is SIGKILLed in the middle of writes, several times, at random
// moments: enrollment tokens being issued, hosts enrolling, and tool calls on a connected daemon
// being recorded. Restarted on the same data dir each time, it must start (no stale lock, no
// recovery failure), keep every write it acknowledged before the kill, and leave a database
// whose tables and indexes check clean with amcheck.
// PGlite only: with AEGIS_TEST_PG_DSN the controller would run on PostgreSQL, whose crash safety
// is PostgreSQL's (tests/faults/postgres_restart_test.ts covers the server going away).
import assert from "node:assert/strict";
import { PGlite } from "@electric-sql/pglite";
import { amcheck } from "@electric-sql/pglite/contrib/amcheck";
import { startControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { eventually } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: TEST_DB_KIND !== "pglite" };

const KILLS = 3;

interface Acked {
  /** Enrollment tokens whose issue answered 201 (jti). */
  jtis: Set<string>;
  /** Hosts whose `aegis edge enroll` exited 0. */
  hosts: Set<string>;
  /** Calls whose `started` event arrived: the running row was written. */
  started: Set<string>;
  /** Calls whose `exit` event arrived: the finished row (status, exit code) was written. */
  finished: Map<string, { exit_code: number; output: string }>;
}

/** One exec over REST; resolves with what was acknowledged before the stream ended. */
async function execCall(
  endpoint: string,
  token: string,
  nodeId: string,
  argv: string[],
  acked: Acked,
): Promise<void> {
  const response = await fetch(`${endpoint}/v1/edge/hosts/${nodeId}/exec`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ argv }),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`exec answered ${response.status}`);
  }
  let callId: string | undefined;
  let rest = "";
  let output = "";
  const decoder = new TextDecoder();
  for await (const piece of response.body!) {
    rest += decoder.decode(piece, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      const event = JSON.parse(line);
      if (event.type === "started") {
        callId = event.call_id;
        acked.started.add(event.call_id);
      }
      if (event.type === "stdout") output += atob(event.data);
      if (event.type === "exit" && callId) {
        acked.finished.set(callId, { exit_code: event.exit_code, output });
      }
    }
  }
}

Deno.test(
  `[${TEST_DB_KIND}] SIGKILL during writes loses no acknowledged write and corrupts nothing`,
  opts,
  async () => {
    const controller = await startControllerProcess({ edge: "attest_rate_limit_per_min: 1000" });
    const hosts: Host[] = [];
    const acked: Acked = {
      jtis: new Set(),
      hosts: new Set(),
      started: new Set(),
      finished: new Map(),
    };
    try {
      const admin = await controller.operatorToken("team-a", "admin");
      const worker = await enrollNewHost(controller, { name: "worker" });
      hosts.push(worker.host);
      acked.hosts.add(worker.nodeId);
      const daemon = worker.host.startDaemon();
      await daemon.waitFor(/stream connected/);

      for (let round = 1; round <= KILLS; round++) {
        let running = true;
        let seq = 0;
        const enroller = async () => {
          while (running) {
            try {
              const issued = await controller.issueEnrollment("team-a");
              acked.jtis.add((issued as { jti?: string }).jti!);
              const { host, nodeId } = await enrollNewHost(controller, {
                name: `r${round}-${seq++}`,
              });
              hosts.push(host);
              acked.hosts.add(nodeId);
            } catch {
              // the controller died under it: unacknowledged, so nothing is asserted about it
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        };
        const caller = async () => {
          while (running) {
            const n = seq++;
            await execCall(controller.endpoint, admin, worker.nodeId, ["echo", `call-${n}`], acked)
              .catch(() => new Promise((r) => setTimeout(r, 100)));
          }
        };
        const finishedBefore = acked.finished.size;
        const startedBefore = new Set(acked.started);
        const hostsBefore = acked.hosts.size;
        const load = [enroller(), enroller(), caller(), caller(), caller()];
        // A random moment once writes of every kind are under way.
        await eventually(
          () =>
            Promise.resolve(
              (acked.finished.size > finishedBefore && acked.hosts.size > hostsBefore) ||
                undefined,
            ),
          "writes under way",
          60_000,
        );
        const delayMs = Math.floor(Math.random() * 2000);
        await new Promise((r) => setTimeout(r, delayMs));
        const status = await controller.kill("SIGKILL");
        assert.equal(status.signal, "SIGKILL");
        running = false;
        await Promise.all(load);
        console.log(
          `kill ${round} at +${delayMs} ms: ${acked.jtis.size} tokens, ${acked.hosts.size} hosts, ` +
            `${acked.finished.size} finished calls acknowledged so far`,
        );

        const startedAt = performance.now();
        await controller.start();
        console.log(
          `restart ${round}: serving in ${(performance.now() - startedAt).toFixed(0)} ms`,
        );
        await verifyAcked(controller, admin, worker.nodeId, acked, startedBefore);
        // The daemon comes back by itself, and calls run again before the next kill.
        await eventually(
          async () => {
            const probe: Acked = { ...acked, started: new Set(), finished: new Map() };
            await execCall(controller.endpoint, admin, worker.nodeId, ["true"], probe);
            return probe.finished.size === 1 || undefined;
          },
          "calls through the reconnected daemon",
          60_000,
        );
      }

      // The data dir itself: tables and indexes check clean, and hold what was acknowledged.
      await controller.kill("SIGTERM");
      await checkDataDir(`${controller.dataDir}/pglite`, acked);
    } finally {
      for (const host of hosts) await host.cleanup();
      await controller.stop();
    }
  },
);

async function verifyAcked(
  controller: Awaited<ReturnType<typeof startControllerProcess>>,
  token: string,
  workerId: string,
  acked: Acked,
  earlier: Set<string>,
): Promise<void> {
  const list = await (await controller.api("/v1/edge/hosts", { token })).json();
  const present = new Set((list.hosts as { node_id: string }[]).map((h) => h.node_id));
  for (const nodeId of acked.hosts) assert.ok(present.has(nodeId), `host ${nodeId} was lost`);

  const response = await controller.api(`/v1/edge/hosts/${workerId}/history?limit=500`, { token });
  const history = (await response.json()).history as {
    call_id: string;
    status: string;
    exit_code: number | null;
  }[];
  const rows = new Map(history.map((row) => [row.call_id, row]));
  // This round's calls are the newest; earlier rounds' are checked in the data dir at the end.
  const round = [...acked.started].filter((id) => !earlier.has(id));
  assert.ok(round.length < 500, "the history page covers the round's calls");
  for (const callId of round) {
    const row = rows.get(callId);
    assert.ok(row, `call ${callId} was acknowledged as started but has no history row`);
    // Running at the kill: the restart marks it interrupted; it never stays "running".
    assert.notEqual(row.status, "running", `call ${callId} still running after the restart`);
  }
  for (const callId of round) {
    const exit = acked.finished.get(callId);
    if (!exit) continue;
    const row = rows.get(callId)!;
    assert.equal(row.status, "ok", `call ${callId} finished ok but the record says ${row.status}`);
    assert.equal(row.exit_code, exit.exit_code);
  }
}

async function checkDataDir(dir: string, acked: Acked): Promise<void> {
  const pg = await PGlite.create({ dataDir: dir, extensions: { amcheck } });
  try {
    await pg.exec("CREATE EXTENSION IF NOT EXISTS amcheck");
    const heap = await pg.query<{ relname: string; problems: number }>(
      `SELECT c.relname, (SELECT count(*)::int FROM verify_heapam(c.oid)) AS problems
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'`,
    );
    assert.ok(heap.rows.length >= 5, "the schema's tables are there");
    for (const row of heap.rows) assert.equal(row.problems, 0, `heap of ${row.relname}`);
    const indexes = await pg.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_am a ON a.oid = c.relam
        WHERE n.nspname = 'public' AND c.relkind = 'i' AND a.amname = 'btree'`,
    );
    for (const { relname } of indexes.rows) {
      // heapallindexed: every heap tuple must be found in the index too.
      await pg.query("SELECT bt_index_check($1::regclass, true)", [relname]);
    }
    const jtis = await pg.query<{ jti: string }>("SELECT jti FROM enrollment_tokens");
    const stored = new Set(jtis.rows.map((r) => r.jti));
    for (const jti of acked.jtis) assert.ok(stored.has(jti), `enrollment token ${jti} was lost`);
    const hosts = await pg.query<{ node_id: string }>("SELECT node_id FROM edge_daemons");
    const enrolled = new Set(hosts.rows.map((r) => r.node_id));
    for (const nodeId of acked.hosts) assert.ok(enrolled.has(nodeId), `host ${nodeId} was lost`);
    const calls = await pg.query<{ call_id: string; status: string; exit_code: number | null }>(
      "SELECT call_id, status, exit_code FROM tool_calls WHERE call_id = ANY($1::text[])",
      [[...acked.started]],
    );
    const rows = new Map(calls.rows.map((r) => [r.call_id, r]));
    for (const callId of acked.started) {
      const row = rows.get(callId);
      assert.ok(row, `call ${callId} was lost`);
      const exit = acked.finished.get(callId);
      if (exit) assert.deepEqual([row.status, row.exit_code], ["ok", exit.exit_code], callId);
      // Running at a kill: interrupted, or ok if its end was written but its answer was lost.
      else assert.ok(["interrupted", "ok"].includes(row.status), `${callId}: ${row.status}`);
    }
    // The kills did land in the middle of calls (else this test proved little).
    const interrupted = calls.rows.filter((r) => r.status === "interrupted").length;
    assert.ok(interrupted > 0, "no kill caught a call in flight");
    console.log(
      `amcheck: ${heap.rows.length} tables, ${indexes.rows.length} indexes clean; ` +
        `${acked.jtis.size} tokens, ${acked.hosts.size} hosts, ${acked.started.size} calls ` +
        `(${interrupted} interrupted by a kill) kept`,
    );
  } finally {
    await pg.close();
  }
}
