// End to end: tool calls through a real controller to real daemons, driven by the operator CLI.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "./support/controller.ts";
import { enrollNewHost, type Host, makeHost } from "./support/host.ts";
import { AGENT_MAIN, Background, eventually, runDeno } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

async function enrolledHost(
  controller: ControllerProcess,
  tenant = "team-a",
): Promise<{ host: Host; nodeId: string }> {
  return await enrollNewHost(controller, { tenant });
}

async function operatorEnv(controller: ControllerProcess, tenant = "team-a") {
  return {
    AEGIS_ENDPOINT: controller.endpoint,
    AEGIS_TOKEN: await controller.operatorToken(tenant, "operator"),
  };
}

async function hostStatus(
  controller: ControllerProcess,
  nodeId: string,
  token: string,
): Promise<string> {
  const response = await controller.api(`/v1/edge/hosts/${nodeId}`, { token });
  return (await response.json()).status;
}

Deno.test(
  `[${TEST_DB_KIND}] exec streams output live, returns the exit code, kills the tree on timeout`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    const operator = await makeHost();
    try {
      const env = await operatorEnv(controller);
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const aegis = (args: string[]) => runDeno(AGENT_MAIN, args, { ...env, HOME: operator.home });

      const run = (args: string[]) =>
        new Background(AGENT_MAIN, ["edge", "exec", nodeId, ...args], {
          ...env,
          HOME: operator.home,
        });
      const live = run(["--", "sh", "-c", "echo first; sleep 2; echo second >&2; exit 3"]);
      await live.waitFor(/first/, 15_000);
      assert.doesNotMatch(
        live.stderr,
        /second/,
        "the first line arrived while the command still ran",
      );
      const status = await live.child.status;
      assert.equal(status.code, 3);
      assert.equal(live.stdout, "first\n");
      assert.match(live.stderr, /^second$/m);

      const marker = `${Math.floor(Math.random() * 1e6)}.25`;
      const timedOut = run([
        "--timeout",
        "2s",
        "--",
        "sh",
        "-c",
        `sleep ${marker} & sleep ${marker} & wait`,
      ]);
      assert.equal((await timedOut.child.status).code, 124);
      await timedOut.stop();
      assert.match(timedOut.stderr, /✖ timed out after 2s; the remote process tree was killed/);
      const left = await new Deno.Command("pgrep", {
        args: ["-f", `sleep ${marker}`],
        stdout: "piped",
      }).output();
      assert.equal(
        new TextDecoder().decode(left.stdout).trim(),
        "",
        "no remote process survived the timeout",
      );

      // The operator sees it all in the host's history.
      const shown = await aegis(["edge", "hosts", "show", nodeId, "--output", "json"]);
      assert.equal(shown.code, 0, shown.stderr);
      const history = JSON.parse(shown.stdout).history;
      assert.deepEqual(
        history.map((h: { status: string; exit_code: number | null }) => [h.status, h.exit_code]),
        [
          ["timed_out", 143],
          ["failed", 3],
        ],
      );
      assert.equal(history[1].summary, "sh -c echo first; sleep 2; echo second >&2; exit 3");
      assert.match(history[1].requested_by, /^cli:operator$/);
      assert.ok(history[1].duration_ms >= 2000);

      // ...and it survives a controller restart.
      await controller.restart();
      const after = (await (await controller.api(`/v1/edge/hosts/${nodeId}/history`, {
        token: env.AEGIS_TOKEN,
      })).json())
        .history;
      assert.equal(after.length, 2);
    } finally {
      await operator.cleanup();
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] the host's local policy refuses tools and working directories`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const configPath = `${host.home}/.aegis/edge/aegis-config.yaml`;
      const config = await Deno.readTextFile(configPath);
      await Deno.writeTextFile(
        configPath,
        config.replace(/local_tools:\n( {2}- .*\n)+/, "local_tools:\n  - git\n")
          .replace(/mount_points:\n( {2}- .*\n)+/, `mount_points:\n  - ${host.home}\n`),
      );
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const env = { ...(await operatorEnv(controller)), HOME: host.home };
      const exec = (args: string[]) =>
        new Background(AGENT_MAIN, ["edge", "exec", nodeId, ...args], env);

      const tool = exec(["--", "ls", "/"]);
      assert.equal((await tool.child.status).code, 126);
      await tool.stop();
      assert.match(tool.stderr, /✖ the host refused the command \(TOOL_NOT_ALLOWED\): .*ls/);

      const git = exec(["--", "git", "--version"]);
      assert.equal((await git.child.status).code, 0);
      await git.stop();
      assert.match(git.stdout, /^git version/);

      const cwd = exec(["--cwd", "/etc", "--", "git", "--version"]);
      assert.equal((await cwd.child.status).code, 126);
      await cwd.stop();
      assert.match(cwd.stderr, /\(CWD_NOT_ALLOWED\)/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] liveness: Disconnected when the daemon dies, Connected again after a controller restart`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const token = await controller.operatorToken("team-a", "readonly");
      let daemon = host.startDaemon();
      await eventually(
        async () => (await hostStatus(controller, nodeId, token)) === "Connected" || undefined,
        "Connected",
      );
      await daemon.stop("SIGKILL");
      await eventually(
        async () => (await hostStatus(controller, nodeId, token)) === "Disconnected" || undefined,
        "Disconnected",
      );

      daemon = host.startDaemon();
      await eventually(
        async () => (await hostStatus(controller, nodeId, token)) === "Connected" || undefined,
        "Connected again",
      );
      await controller.restart();
      await eventually(
        async () => (await hostStatus(controller, nodeId, token)) === "Connected" || undefined,
        "Connected after the controller restarted",
        40_000,
      );
      const shown = await (await controller.api(`/v1/edge/hosts/${nodeId}`, { token })).json();
      assert.ok(shown.reconnects >= 2, `reconnects counted: ${shown.reconnects}`);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] tenants never see each other's hosts, on any route`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller, "team-a");
    try {
      const other = await controller.operatorToken("team-b", "admin");
      const mine = await controller.operatorToken("team-a", "admin");
      const routes: [string, string, string?][] = [
        ["GET", `/v1/edge/hosts/${nodeId}`],
        ["GET", `/v1/edge/hosts/${nodeId}/history`],
        ["POST", `/v1/edge/hosts/${nodeId}/exec`, JSON.stringify({ argv: ["true"] })],
        ["POST", `/v1/edge/hosts/${nodeId}/calls`, JSON.stringify({ tool: "echo" })],
        ["POST", `/v1/edge/hosts/${nodeId}/revoke`, "{}"],
        ["POST", `/v1/edge/hosts/${nodeId}/tags`, JSON.stringify({ tags: ["x"] })],
        ["DELETE", `/v1/edge/hosts/${nodeId}/tags`, JSON.stringify({ tags: ["x"] })],
      ];
      for (const [method, path, body] of routes) {
        const response = await controller.api(path, { method, body, token: other });
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.deepEqual(await response.json(), {
          error: { code: "NOT_FOUND", message: `no edge host ${nodeId}` },
        });
      }
      // A fleet operation over another tenant's host ids finds nothing; its results stay private.
      const fleet = await controller.api("/v1/edge/fleet/operations", {
        method: "POST",
        token: other,
        body: JSON.stringify({ operation: "exec", target: nodeId, arguments: { argv: ["true"] } }),
      });
      assert.equal(fleet.status, 404);
      const own = await controller.api("/v1/edge/fleet/operations", {
        method: "POST",
        token: mine,
        body: JSON.stringify({ operation: "exec", target: nodeId, arguments: { argv: ["true"] } }),
      });
      const opId = (await own.text()).match(/"op_id":"(op-[0-9a-f]+)"/)![1];
      assert.equal(
        (await controller.api(`/v1/edge/fleet/operations/${opId}`, { token: other })).status,
        404,
      );
      assert.equal(
        (await controller.api(`/v1/edge/fleet/operations/${opId}`, { token: mine })).status,
        200,
      );
      const list = await (await controller.api("/v1/edge/hosts", { token: other })).json();
      assert.deepEqual(list.hosts, []);
      const peek = await controller.api("/v1/edge/hosts?tenant_id=team-a", { token: other });
      assert.equal(peek.status, 403);
      const issue = await controller.api("/v1/edge/enrollment-tokens", {
        method: "POST",
        token: other,
        body: JSON.stringify({ tenant_id: "team-a" }),
      });
      assert.equal(issue.status, 403);
      assert.match((await issue.json()).error.message, /no rights on tenant "team-a"/);
      // The owner sees it.
      assert.equal((await controller.api(`/v1/edge/hosts/${nodeId}`, { token: mine })).status, 200);
      // Readonly operators may look but not run.
      const readonly = await controller.operatorToken("team-a", "readonly");
      const denied = await controller.api(`/v1/edge/hosts/${nodeId}/exec`, {
        method: "POST",
        token: readonly,
        body: JSON.stringify({ argv: ["true"] }),
      });
      assert.equal(denied.status, 403);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] logout revokes the host, drops its stream and removes local state`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const token = await controller.operatorToken("team-a", "readonly");
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const out = await host.aegis(["edge", "logout"]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(
        out.stdout,
        new RegExp(`✔ Revoked node ${nodeId} on 127\\.0\\.0\\.1:${controller.port}`),
      );
      assert.match(out.stdout, /✔ Removed .*~\/\.aegis\/edge\/node\.key/);
      assert.equal(await hostStatus(controller, nodeId, token), "Revoked");
      await assert.rejects(Deno.stat(`${host.home}/.aegis/edge/node.token`), Deno.errors.NotFound);
      // The running daemon is told, and stops for good with a clear message.
      const status = await daemon.child.status;
      assert.equal(status.code, 77);
      assert.match(daemon.stderr, /was revoked/);
      assert.match(daemon.stderr, /Re-enroll it with a fresh token/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
