// End to end: executions through the MCP endpoint of a real controller process and real daemons.
// A conversation's task is its one root; a fleet operation runs under it with a child per host;
// cancelling the root (REST, the CLI, the MCP client's own cancellation, the session ending)
// kills the remote processes.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host, makeHost } from "../support/host.ts";
import { connectMcp, type McpSession } from "../support/mcp_client.ts";
import { AGENT_MAIN, type Background, runDeno } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** PIDs of processes whose command line is exactly `sleep <seconds>` (unique per test). */
async function sleepers(seconds: number): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-x", "-f", `sleep ${seconds}`] }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A unique `sleep N` for this run, so concurrent tests never see each other's processes. */
function uniqueSleep(): number {
  return 40_000 + Math.floor(Math.random() * 50_000);
}

interface Fleet {
  controller: ControllerProcess;
  hosts: Host[];
  daemons: Background[];
  nodeIds: string[];
  token: string;
  stop(): Promise<void>;
}

async function threeHosts(): Promise<Fleet> {
  const controller = await startControllerProcess();
  const hosts: Host[] = [];
  const daemons: Background[] = [];
  const nodeIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const enrolled = await enrollNewHost(controller, { tenant: "team-a", name: `h${i}` });
    hosts.push(enrolled.host);
    nodeIds.push(enrolled.nodeId);
    daemons.push(enrolled.host.startDaemon());
  }
  await Promise.all(daemons.map((d) => d.waitFor(/stream connected/)));
  return {
    controller,
    hosts,
    daemons,
    nodeIds,
    token: await controller.operatorToken("team-a", "admin"),
    async stop() {
      await Promise.all(hosts.map((h) => h.cleanup()));
      await controller.stop();
    },
  };
}

function structured<T>(result: { structuredContent?: unknown }): T {
  return result.structuredContent as T;
}

async function errorOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const result = await promise as { isError?: boolean; structuredContent?: unknown };
  assert.equal(result.isError, true, `expected a tool error, got ${JSON.stringify(result)}`);
  return (result.structuredContent as { error: { code: string; message: string } }).error;
}

Deno.test(
  `[${TEST_DB_KIND}] MCP executions: one task per session, fleet hosts as children, cancelling the root kills the remote processes on three hosts`,
  opts,
  async () => {
    const fleet = await threeHosts();
    const seconds = uniqueSleep();
    let mcp: McpSession | undefined;
    try {
      mcp = await connectMcp(`${fleet.controller.endpoint}/mcp/v1`, {
        token: fleet.token,
        headers: { "X-Aegis-Session-Id": "conversation-1" },
      });
      const started = structured<{ execution: { id: string; context: string } }>(
        await mcp.callTool("aegis.execution.start", { title: "patch the web tier" }),
      );
      const rootId = started.execution.id;
      assert.equal(started.execution.context, "aegis-system-operator");

      // A second top-level task in the same conversation is refused while the first runs.
      const second = await errorOf(
        mcp.callTool("aegis.execution.start", { title: "another" }, { allowToolError: true }),
      );
      assert.equal(second.code, "EXECUTION_ACTIVE");

      // A child asking for a broader context than its parent's is refused (the ceiling rule).
      const narrow = structured<{ execution: { id: string } }>(
        await mcp.callTool("aegis.execution.start", {
          title: "a subordinate under a consumer context",
          parent_id: rootId,
          context: "zaru-enterprise",
        }),
      );
      const broader = await errorOf(mcp.callTool("aegis.execution.start", {
        title: "escalate",
        parent_id: narrow.execution.id,
        context: "aegis-system-operator",
      }, { allowToolError: true }));
      assert.equal(broader.code, "CONTEXT_CEILING");
      // Nor may work under the narrower child use a tool its context lacks (fleet tools).
      const fleetUnderFree = await errorOf(mcp.callTool("aegis.edge.fleet.exec", {
        target: "all",
        argv: ["true"],
        execution_id: narrow.execution.id,
      }, { allowToolError: true }));
      assert.equal(fleetUnderFree.code, "FORBIDDEN");

      // The fleet operation joins the session's task; it runs `sleep` on all three hosts.
      const running = mcp.callTool("aegis.edge.fleet.exec", {
        target: "all",
        argv: ["sleep", String(seconds)],
        mode: "parallel",
        deadline_secs: 600,
      }, { allowToolError: true, timeoutMs: 120_000 });
      running.catch(() => {});
      await until(async () => (await sleepers(seconds)).length === 3 || undefined, "3 sleeps");

      const cancelAt = performance.now();
      const response = await fleet.controller.api(`/v1/executions/${rootId}/cancel`, {
        token: fleet.token,
        method: "POST",
        body: JSON.stringify({ reason: "user pressed stop" }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      await until(async () => (await sleepers(seconds)).length === 0 || undefined, "no sleep");
      const cancelMs = performance.now() - cancelAt;
      console.log(`root cancel → last remote sleep gone: ${cancelMs.toFixed(0)} ms`);
      assert.ok(cancelMs < 1000, `the remote processes were gone after ${cancelMs} ms`);

      await running;
      const tree = await (await fleet.controller.api(`/v1/executions/${rootId}`, {
        token: fleet.token,
      })).json();
      assert.equal(tree.tree.status, "cancelled");
      interface Node {
        kind: string;
        status: string;
        children: Node[];
      }
      const all: Node[] = [];
      const walk = (n: Node) => {
        all.push(n);
        n.children.forEach(walk);
      };
      walk(tree.tree);
      const hostsRun = all.filter((n) => n.kind === "node_call");
      assert.equal(hostsRun.length, 3, JSON.stringify(tree.tree, null, 1));
      assert.ok(all.every((n) => n.status !== "running"), "nothing under the root still runs");
      assert.deepEqual(
        hostsRun.map((n) => n.status),
        ["cancelled", "cancelled", "cancelled"],
      );

      // The session is free again: a new task may start.
      const again = structured<{ execution: { id: string } }>(
        await mcp.callTool("aegis.execution.start", { title: "next task" }),
      );
      assert.notEqual(again.execution.id, rootId);
    } finally {
      await mcp?.close();
      await fleet.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] MCP executions: the client's cancellation, the session ending and \`aegis executions cancel\` each kill the remote process`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrollNewHost(controller, { tenant: "team-a" });
    const operator = await makeHost();
    const daemon = host.startDaemon();
    try {
      await daemon.waitFor(/stream connected/);
      const token = await controller.operatorToken("team-a", "admin");

      for (const protocol of ["2026-07-28", "2025-11-25"] as const) {
        // The MCP client cancels its own call (2026-07-28 closes the response; 2025-11-25 sends
        // notifications/cancelled, which the endpoint matches to the call in flight).
        const mcp = await connectMcp(`${controller.endpoint}/mcp/v1`, { token, protocol });
        try {
          const seconds = uniqueSleep();
          const abort = new AbortController();
          const call = mcp.callTool("aegis.edge.command.run", {
            node_id: nodeId,
            argv: ["sleep", String(seconds)],
            timeout_secs: 600,
          }, { signal: abort.signal });
          call.catch(() => {});
          await until(async () => (await sleepers(seconds)).length === 1 || undefined, "sleep");
          abort.abort();
          await until(
            async () => (await sleepers(seconds)).length === 0 || undefined,
            `${protocol}: the remote sleep killed after the client cancelled`,
            10_000,
          );
        } finally {
          await mcp.close();
        }
      }

      // The session ends (DELETE on the endpoint): its running work is cancelled.
      {
        const seconds = uniqueSleep();
        const mcp = await connectMcp(`${controller.endpoint}/mcp/v1`, {
          token,
          headers: { "X-Aegis-Session-Id": "conversation-2" },
        });
        const call = mcp.callTool("aegis.edge.command.run", {
          node_id: nodeId,
          argv: ["sleep", String(seconds)],
          timeout_secs: 600,
        }, { allowToolError: true, timeoutMs: 60_000 });
        call.catch(() => {});
        await until(async () => (await sleepers(seconds)).length === 1 || undefined, "sleep");
        const ended = await fetch(`${controller.endpoint}/mcp/v1`, {
          method: "DELETE",
          headers: { authorization: `Bearer ${token}`, "x-aegis-session-id": "conversation-2" },
        });
        assert.equal(ended.status, 200);
        assert.equal((await ended.json()).cancelled.length, 1);
        await until(async () => (await sleepers(seconds)).length === 0 || undefined, "no sleep");
        const result = await call as { isError?: boolean };
        assert.equal(result.isError, true, "the cancelled call ends as an error");
        await mcp.close();
      }

      // An operator at a terminal: `aegis executions list`, `show`, `cancel`.
      {
        const seconds = uniqueSleep();
        const mcp = await connectMcp(`${controller.endpoint}/mcp/v1`, { token });
        const call = mcp.callTool("aegis.edge.command.run", {
          node_id: nodeId,
          argv: ["sleep", String(seconds)],
          timeout_secs: 600,
        }, { allowToolError: true, timeoutMs: 60_000 });
        call.catch(() => {});
        await until(async () => (await sleepers(seconds)).length === 1 || undefined, "sleep");
        const env = {
          AEGIS_ENDPOINT: controller.endpoint,
          AEGIS_TOKEN: token,
          HOME: operator.home,
        };
        const listed = await runDeno(AGENT_MAIN, [
          "executions",
          "list",
          "--status",
          "running",
          "--output",
          "json",
        ], env);
        assert.equal(listed.code, 0, listed.stderr);
        const running = JSON.parse(listed.stdout) as { id: string; title: string }[];
        const mine = running.find((e) => e.title.includes(nodeId));
        assert.ok(mine, listed.stdout);
        const shown = await runDeno(AGENT_MAIN, ["executions", "show", mine.id], env);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stdout, new RegExp(`${mine.id} running command`));
        const cancelled = await runDeno(AGENT_MAIN, ["executions", "cancel", mine.id], env);
        assert.equal(cancelled.code, 0, cancelled.stderr);
        assert.match(cancelled.stdout, /cancelled 1 execution/);
        await until(async () => (await sleepers(seconds)).length === 0 || undefined, "no sleep");
        await call;
        await mcp.close();
      }
    } finally {
      await operator.cleanup();
      await host.cleanup();
      await controller.stop();
    }
  },
);
