import assert from "node:assert/strict";
import { join } from "node:path";
import { Harness, liveInGroup } from "./testing.ts";
import type { ToolEventBody } from "./types.ts";

// These drive POSIX shells and process groups; the Windows path (cmd.exe, taskkill) cannot run here.
const unix = { ignore: Deno.build.os === "windows" };

function describe(event: ToolEventBody): string {
  return JSON.stringify(event, (_, v) => typeof v === "bigint" ? String(v) : v);
}

function exitOf(event: ToolEventBody) {
  assert.equal(event.case, "exit", `expected exit, got ${describe(event)}`);
  return event.value as Extract<ToolEventBody, { case: "exit" }>["value"];
}

function refusalOf(event: ToolEventBody) {
  assert.equal(event.case, "refused", `expected refused, got ${describe(event)}`);
  return event.value as Extract<ToolEventBody, { case: "refused" }>["value"];
}

/** Polls briefly: SIGKILL delivery and reaping are asynchronous, survivors of 30 s sleeps are not. */
async function assertGroupGone(pgid: number): Promise<void> {
  let live = await liveInGroup(pgid);
  for (let i = 0; i < 10 && live.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    live = await liveInGroup(pgid);
  }
  assert.deepEqual(live, [], `processes of group ${pgid} still alive`);
}

for (const mode of ["argv", "shell"] as const) {
  Deno.test({
    name: `start() streams ${mode} output as it is written, before the exit`,
    ...unix,
    async fn() {
      await using h = await Harness.create();
      const script = "echo one; sleep 0.3; echo two >&2; exit 3";
      const args = mode === "argv" ? { argv: ["/bin/sh", "-c", script] } : { shell: script };
      const exit = exitOf(await h.run("cmd.run", args));
      assert.equal(exit.exitCode, 3);
      assert.equal(exit.signal, "");
      const [first, second, last] = h.seen;
      assert.deepEqual([first.event.case, second.event.case, last.event.case], [
        "stdout",
        "stderr",
        "exit",
      ]);
      assert.ok(last.at - first.at >= 250, "first chunk should arrive ~300 ms before the exit");
      assert.equal(h.output("stdout"), "one\n");
      assert.equal(h.output("stderr"), "two\n");
    },
  });
}

Deno.test({
  name: "start() reports exit codes and runs in the first mount point by default",
  ...unix,
  async fn() {
    await using h = await Harness.create();
    assert.equal(exitOf(await h.run("cmd.run", { argv: ["false"] })).exitCode, 1);
    assert.equal(exitOf(await h.run("cmd.run", { shell: "exit 7" })).exitCode, 7);
    assert.equal(exitOf(await h.run("cmd.run", { argv: ["pwd"] })).exitCode, 0);
    assert.equal(h.output("stdout").trim(), h.dir);
  },
});

Deno.test({
  name: "start() writes stdin and closes it, and closes it at once when absent",
  ...unix,
  async fn() {
    await using h = await Harness.create({ localTools: ["cat"] });
    const stdin = "hello\nworld ✓\n".repeat(5000);
    const call = await h.run("cmd.run", { argv: ["cat"], stdin }, { callId: "with" });
    assert.equal(exitOf(call).exitCode, 0);
    assert.equal(h.output("stdout", "with"), stdin);
    const none = await h.run("cmd.run", { argv: ["cat"], timeout_secs: 5 }, { callId: "without" });
    assert.equal(exitOf(none).timedOut, false);
    assert.equal(h.output("stdout", "without"), "");
  },
});

Deno.test({
  name: "start() passes env, resolves secret:// values and never logs them",
  ...unix,
  async fn() {
    const token = "s3cr3t-value-91f2";
    await using h = await Harness.create({
      secrets: { API_TOKEN: token },
      envAllow: ["PLAIN"],
      secretEnv: ["TOKEN"],
    });
    const env = { PLAIN: "plain value", TOKEN: "secret://API_TOKEN" };
    const exit = exitOf(await h.run("cmd.run", { shell: 'printf "%s|%s" "$PLAIN" "$TOKEN"', env }));
    assert.equal(exit.exitCode, 0);
    assert.equal(h.output("stdout"), `plain value|${token}`);
    assert.ok(h.logs.every((line) => !line.includes(token)), h.logs.join("\n"));
  },
});

Deno.test({
  name: "start() refuses a missing secret before starting anything",
  ...unix,
  async fn() {
    await using h = await Harness.create({ secretEnv: ["TOKEN"] });
    const marker = join(h.dir, "ran");
    const env = { TOKEN: "secret://NOPE" };
    const refused = refusalOf(await h.run("cmd.run", { shell: `touch ${marker}`, env }));
    assert.equal(refused.code, "SECRET_MISSING");
    assert.equal(
      refused.message,
      'secret "NOPE" is not set on this host (aegis edge secrets set NOPE)',
    );
    await assert.rejects(Deno.stat(marker), Deno.errors.NotFound);
  },
});

Deno.test({
  name: "start() kills the whole process tree on timeout",
  ...unix,
  async fn() {
    await using h = await Harness.create();
    const args = { shell: "sleep 30 & sleep 30 & wait", timeout_secs: 1 };
    const exit = exitOf(await h.run("cmd.run", args));
    assert.equal(exit.timedOut, true);
    assert.equal(exit.signal, "SIGTERM");
    assert.equal(exit.exitCode, 128 + 15);
    assert.ok(exit.durationMs >= 1000n && exit.durationMs < 4000n, `took ${exit.durationMs} ms`);
    await assertGroupGone(h.lastPid());
  },
});

Deno.test({
  name: "start() times out at the call's deadline when it comes before timeout_secs",
  ...unix,
  async fn() {
    await using h = await Harness.create();
    const deadline = new Date(Date.now() + 400);
    const exit = exitOf(await h.run("cmd.run", { argv: ["sleep", "30"] }, { deadline }));
    assert.equal(exit.timedOut, true);
    assert.ok(exit.durationMs < 2000n, `took ${exit.durationMs} ms`);
    const past = new Date(Date.now() - 1000);
    const late = refusalOf(await h.run("cmd.run", { argv: ["true"] }, { deadline: past }));
    assert.equal(late.code, "DEADLINE_EXCEEDED");
  },
});

Deno.test({
  name: "cancel() kills the whole process tree and ends with the signal set",
  ...unix,
  async fn() {
    await using h = await Harness.create();
    h.runner.start({
      callId: "c1",
      tool: "cmd.run",
      argumentsJson: JSON.stringify({ shell: "echo started; sleep 30 & sleep 30 & wait" }),
    });
    while (!h.output("stdout", "c1")) await new Promise((r) => setTimeout(r, 20));
    const pgid = h.lastPid();
    assert.equal(h.runner.running, 1);
    h.runner.cancel("c1", "operator pressed ^C");
    const exit = exitOf(await h.final("c1"));
    assert.equal(exit.signal, "SIGTERM");
    assert.equal(exit.timedOut, false);
    assert.equal(h.runner.running, 0);
    await assertGroupGone(pgid);
    assert.ok(h.logs.some((l) => l.includes("operator pressed ^C")));
  },
});

Deno.test({
  name: "start() truncates output past max_output_bytes and keeps draining",
  ...unix,
  async fn() {
    await using h = await Harness.create();
    const small = exitOf(
      await h.run("cmd.run", { shell: "printf 0123456789abcdef", max_output_bytes: 10 }, {
        callId: "small",
      }),
    );
    assert.equal(small.truncated, true);
    assert.equal(
      h.output("stdout", "small"),
      "0123456789\n[aegis: output truncated after 10 bytes]\n",
    );
    // 4 MB through a 100-byte budget: without draining, the child would block on a full pipe.
    const big = exitOf(
      await h.run("cmd.run", {
        shell: "head -c 4000000 /dev/zero; echo done >&2",
        max_output_bytes: 100,
        timeout_secs: 10,
      }, { callId: "big" }),
    );
    assert.deepEqual([big.exitCode, big.timedOut, big.truncated], [0, false, true]);
    assert.equal(h.output("stderr", "big"), "");
    const exact = exitOf(
      await h.run("cmd.run", { shell: "printf 0123456789", max_output_bytes: 10 }),
    );
    assert.equal(exact.truncated, false);
  },
});

Deno.test("cancel() before the process exists ends in an exit without spawning", async () => {
  await using h = await Harness.create();
  h.runner.start({ callId: "early", tool: "cmd.run", argumentsJson: '{"argv":["sleep","30"]}' });
  h.runner.cancel("early", "changed my mind");
  const exit = exitOf(await h.final("early"));
  assert.equal(exit.signal, "SIGTERM");
  assert.ok(!h.logs.some((l) => / pid \d+$/.test(l)), "a process was spawned");
});
