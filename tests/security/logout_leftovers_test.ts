// End to end: `aegis edge logout` leaves no credential behind, including the pieces of a
// rotation that was cut short and temp files of an interrupted write.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { makeHost } from "../support/host.ts";
import { TEST_DB_KIND } from "../support/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] logout removes node.key.new and temp files of interrupted writes`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const host = await makeHost();
    try {
      const { token } = await controller.issueEnrollment("team-a", { name: "web" });
      const enrolled = await host.aegis([
        "edge",
        "enroll",
        token,
        "--non-interactive",
        "--no-service",
      ]);
      assert.equal(enrolled.code, 0, enrolled.stderr);
      const dir = `${host.home}/.aegis/edge`;
      // What a rotation interrupted between its steps leaves, and an interrupted atomic write.
      const leftovers = [
        "node.key.new",
        "node.token.new",
        `.node.token.${crypto.randomUUID()}.tmp`,
      ];
      for (const name of leftovers) {
        await Deno.copyFile(
          `${dir}/${name.includes("key") ? "node.key" : "node.token"}`,
          `${dir}/${name}`,
        );
      }

      const out = await host.aegis(["edge", "logout"]);
      assert.equal(out.code, 0, out.stderr);
      const left: string[] = [];
      for await (const entry of Deno.readDir(dir)) left.push(entry.name);
      assert.deepEqual(left.sort(), ["aegis-config.yaml", "secrets"]);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
