// Honest status (issue 10, item 5): `aegis edge status` and `aegis edge hosts show` say what went
// wrong on the host's side of the wire (the daemon's last connection error, its time, the failed
// attempts) and whether the node's credentials are good. A daemon must never look healthy while
// its credential has expired (the lesson of spiffe/spire#1562).
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "./support/controller.ts";
import { enrollNewHost, type Host } from "./support/host.ts";
import { TEST_DB_KIND } from "./support/db.ts";
import { type Background, eventually } from "./support/processes.ts";
import { editConfig } from "./security/node_support.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface StatusJson {
  status: string;
  token_expires: string;
  auth: { state: string; detail: string; token_expires: string };
  last_error: { message: string; at: string | null } | null;
  failures: number;
}

async function status(host: Host): Promise<{ view: StatusJson; stderr: string }> {
  const out = await host.aegis(["edge", "status", "--output", "json"]);
  assert.equal(out.code, 0, out.stderr);
  return { view: JSON.parse(out.stdout), stderr: out.stderr };
}

async function hostsShow(
  host: Host,
  controller: ControllerProcess,
  nodeId: string,
  json = true,
) {
  const token = await controller.operatorToken("team-a", "readonly");
  const out = await host.aegis([
    "edge",
    "hosts",
    "show",
    nodeId,
    "--endpoint",
    controller.endpoint,
    "--token",
    token,
    ...(json ? ["--output", "json"] : []),
  ]);
  assert.equal(out.code, 0, `exit ${out.code}: ${out.stderr}\n${out.stdout}`);
  return out.stdout;
}

function count(daemon: Background, pattern: RegExp): number {
  return (daemon.stderr.match(new RegExp(pattern, "g")) ?? []).length;
}

/** Reconnects come quickly: the test waits for attempts, not for a minute of backoff. */
async function fastReconnects(host: Host, extra: Record<string, unknown> = {}): Promise<void> {
  await editConfig(host, (config) => {
    Object.assign(config.edge, { reconnect_base_ms: 200, reconnect_cap_secs: 1, ...extra });
  });
}

Deno.test(
  `[${TEST_DB_KIND}] a daemon that could not reach its controller shows the last error and its time`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrollNewHost(controller);
    try {
      await fastReconnects(host);
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      const healthy = (await status(host)).view;
      assert.equal(healthy.auth.state, "ok");
      assert.equal(healthy.last_error, null);
      assert.equal(healthy.failures, 0);

      // The controller goes away; the daemon's attempts fail.
      const down = new Date();
      await controller.kill();
      await eventually(
        () => Promise.resolve(count(daemon, /stream to \S+ failed/) >= 2 || undefined),
        "two failed attempts",
        30_000,
      );
      const { view: offline, stderr } = await status(host);
      assert.match(stderr, /could not be asked/);
      assert.equal(offline.status, "Disconnected");
      assert.ok(offline.last_error, "the last error is shown");
      assert.match(offline.last_error.message, new RegExp(`127\\.0\\.0\\.1:${controller.port}`));
      const at = Date.parse(offline.last_error.at ?? "");
      assert.ok(at >= down.getTime() && at <= Date.now(), `error time ${offline.last_error.at}`);
      assert.ok(offline.failures >= 2, `failures ${offline.failures}`);
      // The token is good and the daemon's last word was that the controller took it.
      assert.equal(offline.auth.state, "ok");
      assert.match(offline.auth.detail, /as of the daemon's last report.*could not be asked/);
      const text = (await host.aegis(["edge", "status"])).stdout;
      assert.match(text, /^last_error: +\S+Z \(\d+s ago\): .*127\.0\.0\.1/m);
      assert.match(text, /^failures: +[2-9]\d*$/m);

      // It comes back: the error stays (with its time) after the daemon reconnects, and the
      // controller was told it in Hello.
      // (A draining controller may still take one stream before it exits: count from here.)
      const connects = count(daemon, /stream connected/);
      await controller.start();
      await eventually(
        () => Promise.resolve(count(daemon, /stream connected/) > connects || undefined),
        "the daemon reconnects",
        30_000,
      );
      // Asked until the controller answers (a loaded machine may time a call out).
      const back = await eventually(async () => {
        const { view } = await status(host);
        return view.status === "Connected" ? view : undefined;
      }, "status from the controller");
      assert.equal(back.failures, 0);
      assert.equal(back.auth.state, "ok");
      assert.match(back.auth.detail, /accepted node\.token just now/);
      assert.ok(back.last_error, "the last error survives the reconnect");
      assert.ok(Date.parse(back.last_error.at!) >= at, "the latest failure");

      const shown = JSON.parse(await hostsShow(host, controller, nodeId));
      assert.deepEqual(shown.last_error, back.last_error, "the operator sees what the host saw");
      assert.ok(shown.connect_failures >= 2, `connect_failures ${shown.connect_failures}`);
      assert.equal(shown.auth.state, "ok");
      assert.equal(shown.auth.token_expires, back.auth.token_expires);
      const shownText = await hostsShow(host, controller, nodeId, false);
      assert.match(shownText, /^auth: +ok: /m);
      assert.match(shownText, /^last_error: +\S+Z \(\d+s ago\): .*127\.0\.0\.1/m);

      // A host cannot fill its record (or an operator's terminal) through its report: a
      // hand-edited state.json with a huge, escape-laden error from the future is stored bounded.
      await daemon.stop();
      const statePath = `${host.home}/.aegis/edge/state.json`;
      const saved = JSON.parse(await Deno.readTextFile(statePath));
      await Deno.writeTextFile(
        statePath,
        JSON.stringify({
          ...saved,
          last_error: "\u001b[2J\u001b[31m" + "x".repeat(50_000),
          last_error_at: "2100-01-01T00:00:00.000Z",
        }),
      );
      const again = host.startDaemon();
      await again.waitFor(/stream connected/, 30_000);
      const bounded = JSON.parse(await hostsShow(host, controller, nodeId)).last_error;
      assert.equal(bounded.message.length, 1024);
      assert.ok(bounded.message.endsWith("…"));
      assert.doesNotMatch(bounded.message, /\p{Cc}/u);
      assert.ok(Date.parse(bounded.at) <= Date.now(), `${bounded.at} is not in the future`);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] an expired node token is never shown as auth ok, on the host or to operators`,
  opts,
  async () => {
    // The shortest token the controller issues, so that it expires within the test.
    const controller = await startControllerProcess({ edge: "node_token_ttl_secs: 60" });
    const { host, nodeId } = await enrollNewHost(controller);
    try {
      // Refreshed only in its last 10 s, so a status call does not race a refresh.
      await fastReconnects(host, { token_refresh_margin_secs: 10, heartbeat_interval_secs: 1 });
      const fresh = (await status(host)).view;
      assert.equal(fresh.auth.state, "ok");
      const expires = Date.parse(fresh.auth.token_expires);
      assert.ok(expires - Date.now() <= 60_000, "a short token");
      await new Promise((resolve) => setTimeout(resolve, expires - Date.now() + 1500));

      // Expired by the host's clock: status says so rather than "ok" (the controller may still
      // take it for a few minutes of clock-skew leeway, or refuse it: expired either way).
      const expired = (await status(host)).view;
      assert.equal(expired.auth.state, "token_expired");
      assert.match(expired.auth.detail, /node\.token expired at/);
      assert.match((await host.aegis(["edge", "status"])).stdout, /^auth: +token_expired: /m);
      const shown = JSON.parse(await hostsShow(host, controller, nodeId));
      assert.equal(shown.auth.state, "token_expired");
      assert.equal(shown.auth.token_expires, fresh.auth.token_expires);
      assert.match(shown.auth.detail, /renews it with its key/);

      // With the controller down, the daemon cannot renew it; status still says expired, with
      // the daemon's reason.
      await controller.kill();
      const daemon = host.startDaemon();
      await daemon.waitFor(/identity upkeep failed/, 30_000);
      await daemon.waitFor(/stream to \S+ failed/, 30_000);
      const offline = (await status(host)).view;
      assert.equal(offline.auth.state, "token_expired");
      assert.match(
        offline.auth.detail,
        /the daemon last said \(token_expired\).*renewing it failed/,
      );
      assert.ok(offline.last_error, "the failed attempt is shown");

      // Back: the daemon renews the token with its key (refused, or at its first heartbeat).
      await controller.start();
      await daemon.waitFor(/stream connected/, 30_000);
      await daemon.waitFor(/refreshed the node token/, 30_000);
      let lastSeen = "";
      const renewed = await eventually(async () => {
        const { view, stderr } = await status(host);
        lastSeen = JSON.stringify(view) + stderr;
        return view.status === "Connected" ? view : undefined;
      }, "status from the controller").catch((e) => {
        throw new Error(`${e}\n${lastSeen}\n${daemon.stderr}\n${controller.process.stderr}`);
      });
      assert.equal(renewed.auth.state, "ok", renewed.auth.detail);
      assert.ok(Date.parse(renewed.auth.token_expires) > Date.now());
      const after = JSON.parse(await hostsShow(host, controller, nodeId));
      assert.equal(after.auth.state, "ok");
      assert.ok(
        after.last_error,
        "the daemon reported the error it met while the controller was down",
      );
      assert.equal(after.last_error.message, renewed.last_error?.message);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
