// End to end: secrets stay out of argv and out of the controller's database. The enrollment
// response's `command_stdin` enrolls a host with the token on standard input, and the history of
// a call keeps environment variable names but not their literal values.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { makeHost } from "../support/host.ts";
import { AGENT_MAIN, runDeno } from "../support/processes.ts";
import { TEST_DB_KIND, testDatabase } from "../support/db.ts";
import { openDb } from "../../controller/store/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] command_stdin enrolls; call history keeps env names, not values`,
  opts,
  async () => {
    const db = await testDatabase();
    const dataDir = await Deno.makeTempDir({ prefix: "aegis-ctl-" });
    const controller = await startControllerProcess({ db, dataDir });
    const host = await makeHost();
    let stopped = false;
    try {
      const issued = await controller.issueEnrollment("team-a", { name: "web" });
      const { command_stdin: stdinForm } = issued as { command_stdin?: string };
      assert.ok(stdinForm, `no command_stdin in ${JSON.stringify(Object.keys(issued))}`);
      assert.match(stdinForm, / \| aegis edge enroll --token-file -$/);

      // Run the command exactly as issued, `aegis` being the CLI under test.
      const shell = await new Deno.Command("bash", {
        args: [
          "-c",
          `aegis() { "$DENO" run -A --quiet "$AGENT" "$@"; }\n${stdinForm} --non-interactive --no-service`,
        ],
        env: {
          HOME: host.home,
          PATH: Deno.env.get("PATH") ?? "",
          XDG_RUNTIME_DIR: `${host.home}/no-runtime`,
          NO_COLOR: "1",
          DENO: Deno.execPath(),
          AGENT: AGENT_MAIN,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(shell.stdout);
      assert.equal(shell.code, 0, new TextDecoder().decode(shell.stderr));
      const nodeId = out.match(/Attested as node (n-[0-9a-f]+)/)![1];

      // The host is not running its daemon: the call is refused as offline, and still recorded.
      const call = await runDeno(AGENT_MAIN, [
        "edge",
        "exec",
        nodeId,
        "--env",
        "PGPASSWORD=hunter2-literal",
        "--env",
        "DB_URL=secret://DB_URL",
        "--",
        "psql",
      ], {
        HOME: host.home,
        AEGIS_ENDPOINT: controller.endpoint,
        AEGIS_TOKEN: await controller.operatorToken("team-a"),
      });
      assert.notEqual(call.code, 0);

      await controller.stop();
      stopped = true;
      const store = db.dsn ? await db.open() : await openDb({ dataDir });
      try {
        const rows = await store.query<{ arguments: { env?: Record<string, string> } }>(
          `SELECT arguments FROM tool_calls WHERE node_id = $1`,
          [nodeId],
        );
        assert.equal(rows.length, 1);
        assert.deepEqual(rows[0].arguments.env, {
          PGPASSWORD: "<redacted>",
          DB_URL: "secret://DB_URL",
        });
        assert.ok(!JSON.stringify(rows).includes("hunter2"));
      } finally {
        if (!db.dsn) await store.close();
      }
    } finally {
      if (!stopped) await controller.stop();
      await host.cleanup();
      await db.cleanup();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
);
