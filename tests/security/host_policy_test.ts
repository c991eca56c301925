// Issue 9, items 2 and 3, end to end (real controller, real enrolled daemon): the host's own
// policy. Environment variables are an allowlist; a fresh enroll grants no shell unless asked;
// a shell call cannot read the daemon's node.key, node.token or secrets.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrolledHost, exec, readConfig, setConfig } from "./host_policy_support.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Each makes ldd, pip3 or git (or the shell they start) run code the caller chose. */
const VECTORS: Record<string, string> = {
  "BASH_FUNC_git%%": "() { id; }",
  PERL5OPT: "-e system('id')",
  NODE_OPTIONS: "--require /tmp/x.js",
  GIT_CONFIG_COUNT: "1",
  GIT_CONFIG_KEY_0: "core.pager",
  GIT_CONFIG_VALUE_0: "id",
  GCONV_PATH: "/tmp",
  PYTHONWARNINGS: "all:0:antigravity.x:0:0",
  BROWSER: "id",
  SHELLOPTS: "xtrace",
  PS4: "$(id)",
  LD_PRELOAD: "/tmp/x.so",
  LD_AUDIT: "/tmp/x.so",
  LD_LIBRARY_PATH: "/tmp",
  PYTHONPATH: "/tmp",
};

Deno.test(
  `[${TEST_DB_KIND}] cmd.run refuses every code-loading environment variable by name`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      await setConfig(host, { local_tools: ["ldd", "pip3", "git"] });
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      const token = await controller.operatorToken("team-a", "operator");
      const run = (body: Record<string, unknown>) => exec(controller, nodeId, token, body);

      const plain = await run({ argv: ["git", "--version"], env: { LANG: "C" } });
      assert.equal(plain.exitCode, 0, JSON.stringify(plain));
      for (const [name, value] of Object.entries(VECTORS)) {
        const result = await run({ argv: ["git", "--version"], env: { [name]: value } });
        assert.equal(result.refused?.code, "ENV_NOT_ALLOWED", `${name}: ${JSON.stringify(result)}`);
        assert.ok(result.refused.message.startsWith(`setting ${name} is not allowed`), name);
      }
      // A secret goes only where edge.secret_env says: not into a variable that prints it.
      const leak = await run({ argv: ["git", "--version"], env: { LANG: "secret://DB" } });
      assert.equal(leak.refused?.code, "ENV_NOT_ALLOWED", JSON.stringify(leak));
      assert.match(leak.refused.message, /^a secret may not be placed in LANG/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] enroll grants no shell unless --local-tools or a person says so, and the plan says what a grant means`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId, stdout } = await enrolledHost(controller, ["--output", "json"]);
    try {
      const plan = JSON.parse(stdout).plan;
      assert.deepEqual(plan.local_tools.granted, []);
      assert.equal(plan.local_tools.runs_any_command, false);
      assert.ok(plan.local_tools.detected.includes("shell"), "sh is on PATH, so it is suggested");
      assert.deepEqual((await readConfig(host)).local_tools, []);
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      const token = await controller.operatorToken("team-a", "operator");
      const id = await exec(controller, nodeId, token, { shell: "id" });
      assert.equal(id.refused?.code, "TOOL_NOT_ALLOWED", JSON.stringify(id));

      const { token: enrollment } = await controller.issueEnrollment("team-a");
      const dry = await host.aegis([
        "edge",
        "enroll",
        enrollment,
        "--dry-run",
        "--local-tools",
        "git,shell",
      ]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(
        dry.stdout,
        /^ {2}tools {5}git, shell: this host will run ANY command for tenant team-a's operators/m,
      );
      // Whether the granted tools can reach node.key is said too, either way.
      assert.match(
        dry.stdout,
        hasBwrap
          ? /^ {2}sandbox {3}calls run with ~\/\.aegis\/edge hidden/m
          : /^ {2}sandbox {3}unavailable .*can read node\.key/m,
      );
      const json = await host.aegis([
        "edge",
        "enroll",
        enrollment,
        "--dry-run",
        "--output",
        "json",
        "--local-tools",
        "uptime",
      ]);
      const tools = JSON.parse(json.stdout).local_tools;
      assert.deepEqual([tools.granted, tools.runs_any_command], [["uptime"], false]);
      assert.equal(tools.identity_hidden, hasBwrap);
      const bad = await host.aegis(["edge", "enroll", enrollment, "--local-tools", "/bin/sh"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--local-tools: "\/bin\/sh" is not a bare program name/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

const hasBwrap = Deno.build.os === "linux" &&
  (await new Deno.Command("sh", { args: ["-c", "command -v bwrap"] }).output()).success;

Deno.test(
  {
    name:
      `[${TEST_DB_KIND}] a shell call cannot read node.key, node.token or secrets, by path, cwd or /proc`,
    // Needs Debian's bubblewrap (CI installs it); without it the daemon says calls are unprotected.
    ignore: !hasBwrap,
    ...opts,
  },
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const state = `${host.home}/.aegis/edge`;
      await setConfig(host, { local_tools: ["shell"], mount_points: [host.home] });
      await Deno.writeTextFile(`${state}/secrets/DB`, "secret-db-password-7a1f\n", { mode: 0o600 });
      await Deno.symlink(state, `${host.home}/innocent`);
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      const pid = daemon.child.pid;
      const token = await controller.operatorToken("team-a", "operator");
      const run = (body: Record<string, unknown>) => exec(controller, nodeId, token, body);

      const secrets = [
        (await Deno.readTextFile(`${state}/node.key`)).split("\n")[1],
        (await Deno.readTextFile(`${state}/node.token`)).trim().slice(-40),
        "secret-db-password-7a1f",
      ];
      const snoop = [
        "cat ~/.aegis/edge/node.key ~/.aegis/edge/node.token ~/.aegis/edge/secrets/DB",
        "cat ~/innocent/node.key",
        `cat /proc/${pid}/root${state}/node.key`,
        `cat /proc/self/../${pid}/cwd/.aegis/edge/node.key /proc/${pid}/cwd/node.key`,
        `tr '\\0' '\\n' < /proc/${pid}/environ`,
        `cat /proc/${pid}/cmdline`,
        "exit 0",
      ].join(" 2>&1; ");
      const result = await run({ shell: snoop });
      assert.equal(result.exitCode, 0, JSON.stringify(result));
      for (const secret of secrets) {
        assert.ok(!result.stdout.includes(secret), `leaked ${secret}:\n${result.stdout}`);
      }
      assert.doesNotMatch(result.stdout, /HOME=/, "the daemon's /proc entries are out of reach");

      for (const cwd of [state, `${host.home}/innocent`, `${state}/secrets`]) {
        const inside = await run({ argv: ["ls"], cwd });
        assert.equal(inside.refused?.code, "CWD_NOT_ALLOWED", `${cwd}: ${JSON.stringify(inside)}`);
      }

      const status = await host.aegis(["edge", "status", "--output", "json"]);
      assert.equal(JSON.parse(status.stdout).sandbox.active, true, status.stdout);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
