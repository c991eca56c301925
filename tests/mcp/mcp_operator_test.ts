// End to end: the MCP endpoint of a real controller process, reached with the official MCP
// client SDK and this controller's own operator tokens (the embedded default: no identity
// provider), driving real daemons.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { enrollNewHost } from "../support/host.ts";
import { connectMcp, MCP_PROTOCOLS } from "../support/mcp_client.ts";
import { TEST_DB_KIND } from "../support/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

for (const protocol of MCP_PROTOCOLS) {
  Deno.test(
    `[${TEST_DB_KIND}] MCP ${protocol}: an operator token lists the operator tools and runs a command with live progress`,
    opts,
    async () => {
      const controller = await startControllerProcess();
      const { host, nodeId } = await enrollNewHost(controller, { tenant: "team-a" });
      const daemon = host.startDaemon();
      try {
        await daemon.waitFor(/stream connected/);
        const token = await controller.operatorToken("team-a", "admin");
        const mcp = await connectMcp(`${controller.endpoint}/mcp/v1`, { token, protocol });
        try {
          const names = (await mcp.listTools()).map((t) => t.name).sort();
          assert.ok(names.includes("aegis.edge.fleet.exec"), names.join(", "));
          assert.ok(names.includes("aegis.edge.command.run"));
          const progress: string[] = [];
          const result = await mcp.callTool("aegis.edge.command.run", {
            node_id: nodeId,
            shell: "echo one; sleep 1; echo two",
          }, { onProgress: (_p, message) => message && progress.push(message) });
          const out = result.structuredContent as { exit_code: number; stdout: string };
          assert.equal(out.exit_code, 0);
          assert.equal(out.stdout, "one\ntwo\n");
          assert.ok(progress.some((m) => m.includes("one")), progress.join(" | "));
        } finally {
          await mcp.close();
        }
      } finally {
        await daemon.stop();
        await host.cleanup();
        await controller.stop();
      }
    },
  );
}
