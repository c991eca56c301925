// The controller's name stops resolving (a DNS outage, a split-DNS change), the connection drops,
// and later the name resolves again: the daemon says plainly that the name does not resolve,
// keeps trying, and reconnects by itself. The daemon runs under bubblewrap with its own
// /etc/hosts bound in, so the test changes what the name resolves to for that process alone.
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { enrollNewHost } from "../support/host.ts";
import { AGENT_MAIN, Background, eventually } from "../support/processes.ts";
import { hostStatus, sleep, withEdge } from "./daemons.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const NAME = "aegis-controller.invalid";

function bwrapWorks(): boolean {
  try {
    return new Deno.Command("bwrap", { args: ["--dev-bind", "/", "/", "true"] }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    `[${TEST_DB_KIND}] the controller's name stops resolving, then resolves again: the daemon reconnects`,
  // A private /etc/hosts for the daemon needs bubblewrap's bind mount: Linux, where it works.
  ignore: Deno.build.os !== "linux" || !bwrapWorks(),
  ...opts,
  fn: async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrollNewHost(controller);
    const hostsFile = `${host.home}/hosts`;
    const resolves = `127.0.0.1 localhost\n127.0.0.1 ${NAME}\n`;
    await Deno.writeTextFile(hostsFile, resolves);
    const configPath = `${host.home}/.aegis/edge/aegis-config.yaml`;
    const config = await Deno.readTextFile(configPath);
    await Deno.writeTextFile(
      configPath,
      withEdge({ reconnect_cap_secs: 8 })(
        config
          .replace(/127\.0\.0\.1:(\d+)/g, `${NAME}:$1`)
          // The daemon is already inside bubblewrap; its calls need no second sandbox here.
          .replace(/sandbox: .*/, "sandbox: off"),
      ),
    );
    // Writes to hostsFile keep its inode, so the bind mount sees every change.
    const daemon = new Background(AGENT_MAIN, [], {
      HOME: host.home,
      PATH: Deno.env.get("PATH") ?? "",
      XDG_RUNTIME_DIR: `${host.home}/no-runtime`,
    }, [
      "bwrap",
      "--die-with-parent",
      "--dev-bind",
      "/",
      "/",
      "--bind",
      hostsFile,
      "/etc/hosts",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      AGENT_MAIN,
      "edge",
      "run",
    ]);
    let exited = false;
    daemon.child.status.then(() => exited = true);
    const token = await controller.operatorToken("team-a", "readonly");
    const connected = () =>
      eventually(
        async () => (await hostStatus(controller, nodeId, token)) === "Connected" || undefined,
        "Connected",
        40_000,
      );
    try {
      await daemon.waitFor(new RegExp(`stream connected to ${NAME.replaceAll(".", "\\.")}`));
      await connected();

      await Deno.writeTextFile(hostsFile, "127.0.0.1 localhost\n");
      await controller.restart({ signal: "SIGKILL" });
      // The daemon names the failure: the name does not resolve (not a generic error).
      await daemon.waitFor(/ENOTFOUND|EAI_AGAIN|EAI_NONAME/, 30_000);
      await sleep(10_000); // several failed attempts while the name is gone
      assert.equal(await hostStatus(controller, nodeId, token), "Disconnected");

      await Deno.writeTextFile(hostsFile, resolves);
      const back = Date.now();
      await connected();
      console.log(`name resolves again: Connected after ${Date.now() - back} ms`);
      await sleep(2_000);
      assert.equal(exited, false, daemon.stderr);
      assert.doesNotMatch(daemon.stderr, /internal error \(a bug|Uncaught/);
    } finally {
      // bubblewrap does not pass SIGTERM on: stop the daemon itself (its pid is in state.json).
      const state = await Deno.readTextFile(`${host.home}/.aegis/edge/state.json`).catch(() => "");
      const pid = Number(state.match(/"pid": (\d+)/)?.[1]);
      if (pid) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
      await daemon.stop();
      await host.cleanup();
      await controller.stop();
    }
  },
});
