// End to end: the operator token reaches `aegis` without ever being in its argv, which any user
// of the machine can read (/proc/<pid>/cmdline, `ps`). `--token-file FILE` and `--token-file -`
// work for every operator command; `--token` still works but warns.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { AGENT_MAIN, eventually, runDeno } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] operator token from a file or stdin, never in argv`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const dir = await Deno.makeTempDir({ prefix: "aegis-optoken-" });
    try {
      const token = await controller.operatorToken("team-a");
      const env = { HOME: dir, AEGIS_ENDPOINT: controller.endpoint };
      const tokenFile = `${dir}/operator.jwt`;
      await Deno.writeTextFile(tokenFile, token + "\n", { mode: 0o600 });
      const aegis = (args: string[], stdin?: string) =>
        runDeno(AGENT_MAIN, ["edge", ...args], env, stdin);

      const fromFile = await aegis([
        "hosts",
        "list",
        "--output",
        "json",
        "--token-file",
        tokenFile,
      ]);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.deepEqual(JSON.parse(fromFile.stdout), []);
      assert.equal(fromFile.stderr, "");

      // A fleet command (a different register function) gets the same option.
      const fleet = await aegis(["fleet", "show", "op-missing", "--token-file", tokenFile]);
      assert.notEqual(fleet.code, 0);
      assert.match(fleet.stderr, /no fleet operation op-missing/);

      // From standard input: read /proc/<pid>/cmdline while the process waits for the token.
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", AGENT_MAIN, "edge", "hosts", "list", "--token-file", "-"],
        env: { NO_COLOR: "1", ...env },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const cmdline = await eventually(async () => {
        const text = await Deno.readTextFile(`/proc/${child.pid}/cmdline`);
        return text.includes("--token-file") ? text : undefined;
      }, "the CLI to start");
      assert.ok(!cmdline.includes(token), "the token is not in argv");
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(token));
      await writer.close();
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);

      // --token on argv still works, with a warning that says why it is a bad idea.
      const argv = await aegis(["hosts", "list", "--token", token]);
      assert.equal(argv.code, 0, argv.stderr);
      assert.match(argv.stderr, /--token puts the operator token in the process list \(ps\)/);

      const both = await aegis(["hosts", "list", "--token", token, "--token-file", tokenFile]);
      assert.equal(both.code, 2, both.stderr);
      assert.match(both.stderr, /not both/);

      const huge = `${dir}/huge`;
      await Deno.writeTextFile(huge, "x".repeat(100_000));
      const tooBig = await aegis(["hosts", "list", "--token-file", huge]);
      assert.equal(tooBig.code, 2, tooBig.stderr);
      assert.match(tooBig.stderr, /larger than 65536 bytes/);

      const none = await aegis(["hosts", "list"]);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /--token-file/);
    } finally {
      await controller.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
