// A relay token is not a bearer pass to ForwardCall: it is bound to the relay it is addressed to,
// to one recorded call (call id, node, tool, arguments), and it is spent on first use. Relay A is
// a real process holding a real daemon's stream; relay B runs in this process (the real
// ToolCallService and RelayPeerClients) so the test sees the exact token B put on the wire, as an
// attacker on a plaintext peering network would, and replays it. PostgreSQL only (relays).
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RelayPeerService } from "../../shared/gen/aegis/edge/v1/relay_peer_pb.ts";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";
import { loadSigningKey } from "../../controller/app/signing_key.ts";
import { RelayTokens } from "../../controller/app/relay_tokens.ts";
import { RelayRegistry } from "../../controller/app/relay_registry.ts";
import { RelayPeerClients } from "../../controller/rpc/relay_peer_client.ts";
import { DaemonRepository } from "../../controller/app/daemons.ts";
import { EdgeHub } from "../../controller/app/edge_sessions.ts";
import type { NodeAuthenticator } from "../../controller/app/node_auth.ts";
import { type CallEvent, ToolCallService } from "../../controller/app/tool_calls.ts";
import type { ForwardedCall } from "../../controller/app/peer_calls.ts";
import type { Operator } from "../../controller/app/operators.ts";
import { systemClock } from "../../controller/app/clock.ts";
import { DEFAULT_ISSUER } from "../../controller/auth_config.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: TEST_DB_KIND !== "postgres" };

Deno.test(
  `[${TEST_DB_KIND}] relay tokens are bound, single-use and need a recorded call`,
  opts,
  async (t) => {
    const db = await testDatabase();
    const shared = await Deno.makeTempDir({ prefix: "aegis-relay-token-" });
    const keyFile = `${shared}/signing-key.jwk`;
    let relayA: ControllerProcess | undefined;
    let host: Host | undefined;
    let manager: Http2SessionManager | undefined;
    let link: RelayPeerClients | undefined;
    try {
      relayA = await startControllerProcess({ db, signingKeyFile: keyFile, nodeName: "relay-a" });
      const enrolled = await enrollNewHost(relayA);
      host = enrolled.host;
      const nodeId = enrolled.nodeId;
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);

      // Relay B, in process: what it sends to relay A is captured on the way out.
      const sql = await db.open();
      const key = await loadSigningKey(keyFile);
      const issued: string[] = [];
      const forwarded: ForwardedCall[] = [];
      class SniffedTokens extends RelayTokens {
        override async issue(...args: Parameters<RelayTokens["issue"]>): Promise<string> {
          const token = await super.issue(...args);
          issued.push(token);
          return token;
        }
      }
      class SniffedLink extends RelayPeerClients {
        override forward(...args: Parameters<RelayPeerClients["forward"]>) {
          forwarded.push(args[1]);
          return super.forward(...args);
        }
      }
      const tokens = new SniffedTokens(key, DEFAULT_ISSUER, systemClock);
      const registry = new RelayRegistry(
        sql,
        "relay-b",
        "http://127.0.0.1:9",
        systemClock,
        () => {},
      );
      link = new SniffedLink(registry, tokens, "relay-b");
      const daemons = new DaemonRepository(sql, systemClock);
      const hub = new EdgeHub({
        auth: {} as NodeAuthenticator,
        daemons,
        clock: systemClock,
        relayId: "relay-b",
        heartbeatIntervalSecs: 3600,
        log: () => {},
      });
      const calls = new ToolCallService(sql, daemons, hub, "relay-b", systemClock, link);
      const operator: Operator = {
        iss: DEFAULT_ISSUER,
        sub: "op",
        exp: 0,
        tenant_id: "team-a",
        aegis_role: "operator",
        tenants: [],
      };
      const run = async (args: Record<string, unknown>) => {
        const events: CallEvent[] = [];
        for await (
          const event of calls.execute(operator, nodeId, {
            tool: "cmd.run",
            arguments: args,
            timeoutSecs: 20,
          })
        ) events.push(event);
        return events;
      };

      // The attacker: straight to relay A's peer service, with whatever token it holds.
      manager = new Http2SessionManager(relayA.endpoint);
      const client = createClient(
        RelayPeerService,
        createGrpcTransport({ baseUrl: relayA.endpoint, sessionManager: manager }),
      );
      const attempt = async (token: string, call: ForwardedCall): Promise<string> => {
        try {
          const stream = client.forwardCall({
            callId: call.callId,
            nodeId: call.nodeId,
            tool: call.tool,
            argumentsJson: call.argumentsJson,
            deadline: timestampFromDate(call.deadline),
          }, { headers: { authorization: `Bearer ${token}` }, timeoutMs: 15_000 });
          let last = "";
          for await (const event of stream) last = event.event.case ?? "";
          return `ran (${last})`;
        } catch (error) {
          return fromConnectError(error, "relay-a").code;
        }
      };
      const pwned = (name: string) => Deno.stat(`${shared}/${name}`).then(() => true, () => false);
      const touch = (name: string) => JSON.stringify({ argv: ["touch", `${shared}/${name}`] });
      // Records a running call as relay B would before forwarding it (for tokens minted here).
      const recorded = async (callId: string, relay = "relay-b") => {
        await sql.query(
          `INSERT INTO tool_calls (call_id, node_id, tenant_id, tool, summary, arguments,
           requested_by, relay_id, status, started_at)
         VALUES ($1, $2, 'team-a', 'cmd.run', 'touch', '{}'::jsonb, 'op', $3, 'running', now())`,
          [callId, nodeId, relay],
        );
      };
      const mint = (from: string, to: string, call: ForwardedCall) =>
        // Called loosely so this file also runs against the old issue(relayId) signature.
        (tokens.issue as unknown as (...a: unknown[]) => Promise<string>).call(
          tokens,
          from,
          to,
          call,
        );
      const fresh = (argumentsJson: string, nodeId_ = nodeId): ForwardedCall => ({
        callId: crypto.randomUUID(),
        nodeId: nodeId_,
        tool: "cmd.run",
        argumentsJson,
        deadline: new Date(Date.now() + 20_000),
      });

      await t.step("a call through relay B works, and its token is captured", async () => {
        const events = await run({ argv: ["echo", "hello"] });
        const exit = events.find((e) => e.type === "exit");
        assert.ok(exit && exit.type === "exit" && exit.exit_code === 0, JSON.stringify(events));
        assert.equal(issued.length, 1);
        assert.equal(forwarded.length, 1);
      });

      await t.step("the captured token replayed for the same call is refused", async () => {
        assert.notEqual(await attempt(issued[0], forwarded[0]), "ran (exit)");
      });

      await t.step("the captured token cannot carry other arguments or another call", async () => {
        const sameCall = { ...forwarded[0], argumentsJson: touch("pwned-args") };
        assert.match(await attempt(issued[0], sameCall), /UNAUTHENTICATED|REPLAYED|FORBIDDEN/);
        const otherCall = { ...fresh(touch("pwned-call")) };
        assert.match(await attempt(issued[0], otherCall), /UNAUTHENTICATED|REPLAYED|FORBIDDEN/);
        assert.equal(await pwned("pwned-args"), false);
        assert.equal(await pwned("pwned-call"), false);
      });

      await t.step("a token for another relay, node or arguments is refused", async () => {
        const call = fresh(touch("pwned-aud"));
        await recorded(call.callId);
        assert.match(
          await attempt(await mint("relay-b", "relay-x", call), call),
          /UNAUTHENTICATED/,
        );
        const otherNode = await mint("relay-b", "relay-a", { ...call, nodeId: "n-someone-else" });
        assert.match(await attempt(otherNode, call), /UNAUTHENTICATED/);
        const otherArgs = await mint("relay-b", "relay-a", { ...call, argumentsJson: "{}" });
        assert.match(await attempt(otherArgs, call), /UNAUTHENTICATED/);
        assert.equal(await pwned("pwned-aud"), false);
        // The control: the same recorded call with a token for relay A runs, once.
        const good = await mint("relay-b", "relay-a", call);
        assert.equal(await attempt(good, call), "ran (exit)");
        assert.equal(await pwned("pwned-aud"), true);
        assert.equal(await attempt(good, call), "REPLAYED");
      });

      await t.step("a well-formed token for a call nobody recorded is refused", async () => {
        const unrecorded = fresh(touch("pwned-unrecorded"));
        const token = await mint("relay-b", "relay-a", unrecorded);
        assert.match(await attempt(token, unrecorded), /FORBIDDEN/);
        // Recorded by another relay than the token's: refused too.
        const elsewhere = fresh(touch("pwned-elsewhere"));
        await recorded(elsewhere.callId, "relay-c");
        assert.match(
          await attempt(await mint("relay-b", "relay-a", elsewhere), elsewhere),
          /FORBIDDEN/,
        );
        assert.equal(await pwned("pwned-unrecorded"), false);
        assert.equal(await pwned("pwned-elsewhere"), false);
      });
    } finally {
      link?.close();
      manager?.abort();
      await host?.cleanup();
      await relayA?.process.stop().catch(() => {});
      await db.cleanup();
      await Deno.remove(shared, { recursive: true });
      if (relayA) await Deno.remove(relayA.dataDir, { recursive: true }).catch(() => {});
    }
  },
);
