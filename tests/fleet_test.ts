// End to end: fleet operations in waves over real daemons, with hosts down and failure policies.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "./support/controller.ts";
import { enrollNewHost, type Host } from "./support/host.ts";
import { AGENT_MAIN, runDeno } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

interface FleetHost {
  name: string;
  host: Host;
  nodeId: string;
}

async function addHost(
  controller: ControllerProcess,
  name: string,
  tags: string[],
  running: boolean,
): Promise<FleetHost> {
  const { host, nodeId } = await enrollNewHost(controller, { name });
  if (tags.length) {
    const admin = await controller.operatorToken("team-a");
    const tagged = await controller.api(`/v1/edge/hosts/${nodeId}/tags`, {
      method: "POST",
      token: admin,
      body: JSON.stringify({ tags }),
    });
    assert.equal(tagged.status, 200, await tagged.text());
  }
  if (running) await host.startDaemon().waitFor(/stream connected/);
  return { name, host, nodeId };
}

async function fingerprint(h: FleetHost): Promise<string> {
  return (await Deno.readTextFile(`${h.host.home}/.aegis/edge/node.key.pub`)).split(" ")[1];
}

Deno.test(
  `[${TEST_DB_KIND}] fleet rotation in waves: hosts down, continue, fail-fast, stop-after`,
  opts,
  async () => {
    const controller = await startControllerProcess({ edge: "attest_rate_limit_per_min: 100" });
    const hosts: FleetHost[] = [];
    try {
      hosts.push(await addHost(controller, "a-down", ["prod"], false));
      hosts.push(await addHost(controller, "b-down", ["canary"], false));
      for (const name of ["h-1", "h-2", "h-3", "h-4"]) {
        hosts.push(
          await addHost(controller, name, ["prod"], true),
        );
      }
      hosts.push(await addHost(controller, "z-other", [], true));
      const [down, downCanary, ...rest] = hosts;
      const live = rest.slice(0, 4);
      const other = rest[4];
      const env = {
        HOME: other.host.home,
        AEGIS_ENDPOINT: controller.endpoint,
        AEGIS_TOKEN: await controller.operatorToken("team-a", "operator"),
      };
      const fleet = (args: string[]) => runDeno(AGENT_MAIN, ["edge", "fleet", ...args], env);
      const before = new Map(
        await Promise.all(hosts.map(async (h) => [h.name, await fingerprint(h)] as const)),
      );

      // rolling=2, continue: every live target rotates, the dead one is reported, exit non-zero.
      const rolled = await fleet([
        "keys",
        "rotate",
        "--target",
        "tags=AnyOf(prod)",
        "--mode",
        "rolling=2",
        "--on-error",
        "continue",
        "--deadline",
        "30s",
      ]);
      assert.equal(rolled.code, 1, rolled.stderr);
      const out = rolled.stdout;
      assert.match(
        out,
        /^\[fleet op-[0-9a-f]{8}\] keys\.rotate on tags=AnyOf\(prod\): 5 node\(s\), rolling=2, on-error continue$/m,
      );
      assert.match(out, /^\[wave 1\] starting 2 of 5 nodes$/m);
      assert.match(out, /^\[wave 3\] starting 1 of 5 nodes$/m);
      assert.match(
        out,
        new RegExp(
          `^\\[${down.nodeId} a-down\\] ✖ failed \\(offline: host ${down.nodeId} is not connected\\)$`,
          "m",
        ),
      );
      for (const h of live) {
        assert.match(
          out,
          new RegExp(`^\\[${h.nodeId} ${h.name}\\] ✔ rotated$`, "m"),
        );
      }
      assert.match(out, /^Summary: 4 ok, 1 failed \(1 offline, 0 timed out\), 0 skipped$/m);
      for (const h of live) {
        assert.notEqual(
          await fingerprint(h),
          before.get(h.name),
          `${h.name} rotated`,
        );
      }
      assert.equal(await fingerprint(down), before.get("a-down"));
      assert.equal(await fingerprint(other), before.get("z-other"), "untargeted host untouched");

      // The results are kept and can be read back.
      const opId = out.match(/\[fleet (op-[0-9a-f]{8})\]/)![1];
      const shown = JSON.parse((await fleet(["show", opId, "--output", "json"])).stdout);
      assert.equal(shown.status, "done");
      assert.deepEqual(
        shown.results.map((r: { name: string; status: string }) => `${r.name}:${r.status}`).sort(),
        ["a-down:offline", "h-1:ok", "h-2:ok", "h-3:ok", "h-4:ok"],
      );

      // fail-fast: the first failure stops the operation; the rest are skipped, untouched.
      const afterRoll = await fingerprint(live[0]);
      const fast = await fleet([
        "token",
        "refresh",
        "--target",
        "tags=AnyOf(prod)",
        "--mode",
        "sequential",
        "--on-error",
        "fail-fast",
        "--output",
        "json",
      ]);
      assert.equal(fast.code, 1);
      const fastResult = JSON.parse(fast.stdout);
      assert.equal(fastResult.status, "stopped");
      assert.deepEqual(fastResult.counts, {
        ok: 0,
        failed: 0,
        timed_out: 0,
        offline: 1,
        skipped: 4,
      });

      // stop-after=2: two failures stop it before the live hosts are reached.
      const tagged = await controller.api(`/v1/edge/hosts/${downCanary.nodeId}/tags`, {
        method: "POST",
        token: await controller.operatorToken("team-a"),
        body: JSON.stringify({ tags: ["prod"] }),
      });
      assert.equal(tagged.status, 200);
      const stopped = await fleet([
        "keys",
        "rotate",
        "--target",
        "tags=AnyOf(prod)",
        "--mode",
        "rolling=1",
        "--on-error",
        "stop-after=2",
      ]);
      assert.equal(stopped.code, 1);
      assert.match(
        stopped.stdout,
        /^Summary: 0 ok, 2 failed \(2 offline, 0 timed out\), 4 skipped — stopped after 2 failure\(s\) \(--on-error stop-after=2\)$/m,
      );
      assert.equal(await fingerprint(live[0]), afterRoll, "skipped hosts are not rotated");

      // fleet exec reaches the live hosts it targets and nothing else.
      const ids = live.map((h) => h.nodeId).join(",");
      const exec = await fleet([
        "exec",
        "--target",
        ids,
        "--mode",
        "parallel",
        "--output",
        "json",
        "--",
        "true",
      ]);
      assert.equal(exec.code, 0, exec.stdout + exec.stderr);
      assert.deepEqual(JSON.parse(exec.stdout).counts, {
        ok: 4,
        failed: 0,
        timed_out: 0,
        offline: 0,
        skipped: 0,
      });

      // A bad target points at the offending character.
      const bad = await fleet(["exec", "--target", "tags=AnyOf(a b)", "--", "true"]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /\^/);
    } finally {
      for (const h of hosts) await h.host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a REST caller that goes away mid-operation stops listening, not the operation`,
  opts,
  async () => {
    const controller = await startControllerProcess({ edge: "attest_rate_limit_per_min: 100" });
    const hosts: FleetHost[] = [];
    try {
      for (const name of ["s-1", "s-2", "s-3"]) {
        hosts.push(await addHost(controller, name, ["slow"], true));
      }
      const token = await controller.operatorToken("team-a", "operator");
      const abort = new AbortController();
      const response = await controller.api("/v1/edge/fleet/operations", {
        method: "POST",
        token,
        signal: abort.signal,
        body: JSON.stringify({
          operation: "exec",
          target: "tags=AnyOf(slow)",
          mode: "sequential",
          deadline_secs: 30,
          arguments: { argv: ["sleep", "1"] },
        }),
      });
      assert.equal(response.status, 200);
      // Read the first event (the operation's id), then hang up.
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) text += (await reader.read()).value ?? "";
      const opId = JSON.parse(text.split("\n")[0]).op_id as string;
      assert.match(opId, /^op-/);
      abort.abort();
      await reader.cancel().catch(() => {});

      const deadline = Date.now() + 30_000;
      let shown: { status: string; results: { status: string }[] } | undefined;
      while (Date.now() < deadline) {
        const got = await controller.api(`/v1/edge/fleet/operations/${opId}`, { token });
        shown = await got.json();
        if (shown!.status !== "running") break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(shown!.status, "done", JSON.stringify(shown));
      assert.deepEqual(shown!.results.map((r) => r.status), ["ok", "ok", "ok"]);

      // Stopped on request: the host running finishes, the rest are skipped, saying by whom.
      const second = await controller.api("/v1/edge/fleet/operations", {
        method: "POST",
        token,
        body: JSON.stringify({
          operation: "exec",
          target: "tags=AnyOf(slow)",
          mode: "sequential",
          deadline_secs: 30,
          arguments: { argv: ["sleep", "1"] },
        }),
      });
      const secondReader = second.body!.pipeThrough(new TextDecoderStream()).getReader();
      let secondText = "";
      while (!secondText.includes("\n")) secondText += (await secondReader.read()).value ?? "";
      const secondId = JSON.parse(secondText.split("\n")[0]).op_id as string;
      // The operator's CLI asks (POST …/operations/:opId/stop underneath).
      const stop = await runDeno(AGENT_MAIN, ["edge", "fleet", "stop", secondId], {
        HOME: hosts[0].host.home,
        AEGIS_ENDPOINT: controller.endpoint,
        AEGIS_TOKEN: token,
      });
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /asked to start no more hosts/);
      let rest = "";
      for (let r = await secondReader.read(); !r.done; r = await secondReader.read()) {
        rest += r.value;
      }
      const summary = JSON.parse(rest.trim().split("\n").at(-1)!);
      assert.equal(summary.status, "stopped");
      assert.match(summary.reason, /^stopped by cli:operator$/);
      assert.deepEqual(summary.counts, { ok: 1, failed: 0, timed_out: 0, offline: 0, skipped: 2 });
    } finally {
      await Promise.all(hosts.map((h) => h.host.cleanup()));
      await controller.stop();
    }
  },
);
