// Calls through a relay that does not hold the node's stream (issue 9, items 7 and 8): the data
// path is relay-to-relay RPC, so output keeps its order and size, a call over ~8 KB of arguments
// works, a peer that dies fails the call at once, and the peer service wants a relay token.
// Relays need a database several processes share: PostgreSQL only, as tests/relays_test.ts.
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { eventually } from "../support/processes.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { fromBase64 } from "../../shared/crypto/encoding.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: TEST_DB_KIND !== "postgres" };

interface CallResult {
  stdout: Uint8Array;
  exit?: { exit_code: number; truncated: boolean };
  error?: { code: string; message: string };
  callId?: string;
}

/** Runs an exec over REST and collects its NDJSON events. */
async function exec(
  relay: ControllerProcess,
  token: string,
  nodeId: string,
  body: Record<string, unknown>,
  onLine?: (event: Record<string, unknown>) => void,
): Promise<CallResult> {
  const response = await relay.api(`/v1/edge/hosts/${nodeId}/exec`, {
    method: "POST",
    token,
    body: JSON.stringify(body),
  });
  if (response.status !== 200) throw new Error(`exec: ${response.status} ${await response.text()}`);
  const parts: Uint8Array[] = [];
  const result: CallResult = { stdout: new Uint8Array() };
  let rest = "";
  const decoder = new TextDecoder();
  for await (const piece of response.body!) {
    rest += decoder.decode(piece, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      const event = JSON.parse(line);
      onLine?.(event);
      if (event.type === "started") result.callId = event.call_id;
      if (event.type === "stdout") parts.push(fromBase64(event.data));
      if (event.type === "exit") result.exit = event;
      if (event.type === "error") result.error = event.error;
    }
  }
  result.stdout = new Uint8Array(parts.flatMap((p) => [...p]));
  return result;
}

Deno.test(
  `[${TEST_DB_KIND}] calls through another relay keep order, size and errors`,
  opts,
  async (t) => {
    const db = await testDatabase();
    const shared = await Deno.makeTempDir({ prefix: "aegis-peering-" });
    const common = { db, signingKeyFile: `${shared}/signing-key.jwk` };
    const processes: ControllerProcess[] = [];
    let host: Host | undefined;
    try {
      // Relay A holds the daemon's stream (it is the only endpoint the host knows); B does not.
      const relayA = await startControllerProcess({ ...common, nodeName: "relay-a" });
      processes.push(relayA);
      const relayB = await startControllerProcess({
        ...common,
        role: "relay-coordinator",
        nodeName: "relay-b",
      });
      processes.push(relayB);
      const enrolled = await enrollNewHost(relayA);
      host = enrolled.host;
      const nodeId = enrolled.nodeId;
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const token = await relayB.operatorToken("team-a", "operator");
      const history = async (callId: string) => {
        const response = await relayB.api(`/v1/edge/hosts/${nodeId}/history`, { token });
        const rows = (await response.json()).history as Array<Record<string, unknown>>;
        return rows.find((row) => row.call_id === callId)!;
      };

      await t.step("seq 1 100000 via the other relay: every byte, in order, then ok", async () => {
        const expected = Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join("");
        const started = performance.now();
        const out = await exec(relayB, token, nodeId, { argv: ["seq", "1", "100000"] });
        const ms = performance.now() - started;
        const text = new TextDecoder().decode(out.stdout);
        assert.equal(out.error, undefined);
        assert.equal(
          text.length,
          expected.length,
          `delivered ${text.length} of ${expected.length}`,
        );
        assert.ok(text === expected, "output out of order");
        assert.equal(out.exit?.exit_code, 0);
        const row = await history(out.callId!);
        assert.equal(row.status, "ok");
        assert.equal(row.output_bytes, expected.length);
        console.log(`cross-relay seq 1 100000: ${text.length} bytes in ${ms.toFixed(0)} ms`);
      });

      await t.step("100 KB of arguments cross relays", async () => {
        const stdin = "x".repeat(100 * 1024);
        const out = await exec(relayB, token, nodeId, { argv: ["wc", "-c"], stdin });
        assert.equal(out.error, undefined, JSON.stringify(out.error));
        assert.equal(new TextDecoder().decode(out.stdout).trim(), String(stdin.length));
        assert.equal((await history(out.callId!)).status, "ok");
      });

      await t.step("max_output_bytes holds across relays and ends as truncated", async () => {
        const out = await exec(relayB, token, nodeId, {
          argv: ["seq", "1", "100000"],
          max_output_bytes: 1000,
        });
        assert.ok(out.stdout.length <= 1000 + 256, `got ${out.stdout.length} bytes`);
        assert.equal((await history(out.callId!)).status, "truncated");
      });

      await t.step("the peer service refuses callers without a relay token", async () => {
        const manager = new Http2SessionManager(relayA.endpoint);
        const { RelayPeerService } = await import(
          "../../shared/gen/aegis/edge/v1/relay_peer_pb.ts"
        );
        const client = createClient(
          RelayPeerService,
          createGrpcTransport({ baseUrl: relayA.endpoint, sessionManager: manager }),
        );
        const call = (authorization?: string) =>
          (async () => {
            const stream = client.forwardCall({
              callId: crypto.randomUUID(),
              nodeId,
              tool: "cmd.run",
              argumentsJson: JSON.stringify({ argv: ["touch", `${shared}/pwned`] }),
              deadline: { seconds: BigInt(Math.floor(Date.now() / 1000) + 30), nanos: 0 },
            }, { headers: authorization ? { authorization } : {} });
            for await (const _ of stream) { /* drain */ }
          })();
        try {
          const operator = await relayA.operatorToken("team-a", "admin");
          for (const authorization of [undefined, "Bearer junk", `Bearer ${operator}`]) {
            await assert.rejects(call(authorization), /relay token/);
          }
          await assert.rejects(Deno.stat(`${shared}/pwned`));
        } finally {
          manager.abort();
        }
      });

      await t.step(
        "the relay holding the stream dies mid-call: the caller hears at once",
        async () => {
          let sawOutput: () => void;
          const output = new Promise<void>((resolve) => sawOutput = resolve);
          let killedAt = 0;
          const running = exec(relayB, token, nodeId, {
            shell: "echo started; sleep 60",
            timeout_secs: 120,
          }, (event) => event.type === "stdout" && sawOutput());
          await output;
          killedAt = performance.now();
          await relayA.process.stop("SIGKILL");
          const out = await running;
          const waited = performance.now() - killedAt;
          assert.ok(
            out.error,
            `the call must end with an error (after ${waited} ms)\n${relayB.process.stderr}`,
          );
          assert.equal(out.exit, undefined);
          assert.ok(waited < 10_000, `the caller waited ${waited.toFixed(0)} ms`);
          assert.equal((await history(out.callId!)).status, "disconnected");
        },
      );

      await t.step("a relay that stops removes its registration", async () => {
        const sql = await db.open();
        const live = async () =>
          (await sql.query<{ relay_id: string }>("SELECT relay_id FROM relays ORDER BY relay_id"))
            .map((r) => r.relay_id);
        assert.ok((await live()).includes("relay-b"));
        await relayB.process.stop();
        await eventually(
          async () => !(await live()).includes("relay-b") || undefined,
          "deregistered",
        );
      });
    } finally {
      await host?.cleanup();
      for (const p of processes) await p.process.stop().catch(() => {});
      await db.cleanup();
      await Deno.remove(shared, { recursive: true });
      for (const p of processes) await Deno.remove(p.dataDir, { recursive: true }).catch(() => {});
    }
  },
);
