import assert from "node:assert/strict";
import { join } from "node:path";
import { Harness } from "./testing.ts";
import type { ToolEventBody } from "./types.ts";

// These drive POSIX shells and process groups; the Windows path (cmd.exe, taskkill) cannot run here.
const unix = { ignore: Deno.build.os === "windows" };

function refusalOf(event: ToolEventBody) {
  assert.equal(event.case, "refused", `expected refused, got ${event.case}`);
  return event.value as Extract<ToolEventBody, { case: "refused" }>["value"];
}

async function assertNotRun(h: Harness, marker: string): Promise<void> {
  await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the refused call ran anyway");
  assert.ok(!h.logs.some((l) => / pid \d+$/.test(l)), "a process was spawned");
}

Deno.test("start() refuses tools missing from local_tools and names the fix", async () => {
  await using h = await Harness.create({ localTools: ["docker"] });
  const echo = refusalOf(await h.run("echo", { message: "hi" }));
  assert.equal(echo.code, "TOOL_NOT_ALLOWED");
  assert.match(echo.message, /"echo" to local_tools in ~\/\.aegis\/edge\/aegis-config\.yaml/);
  const marker = join(h.dir, "ran");
  const shell = refusalOf(await h.run("cmd.run", { shell: `touch ${marker}` }));
  assert.equal(shell.code, "TOOL_NOT_ALLOWED");
  assert.match(shell.message, /shell mode.*"shell" to local_tools/);
  await assertNotRun(h, marker);
});

Deno.test("start() permits argv by the basename of argv[0] only", async () => {
  await using h = await Harness.create({ localTools: ["aegis-no-such-tool"] });
  const marker = join(h.dir, "ran");
  const touch = refusalOf(await h.run("cmd.run", { argv: ["/usr/bin/touch", marker] }));
  assert.equal(touch.code, "TOOL_NOT_ALLOWED");
  assert.match(touch.message, /executable "touch".*add "touch" to local_tools/);
  // Allowed by bare name, so it gets as far as spawning, where it is not found.
  const allowed = refusalOf(await h.run("cmd.run", { argv: ["aegis-no-such-tool", "ps"] }));
  assert.equal(allowed.code, "COMMAND_NOT_FOUND");
  // The same name with a path could be any file: refused.
  const pathed = refusalOf(await h.run("cmd.run", { argv: ["/opt/x/aegis-no-such-tool", "ps"] }));
  assert.equal(pathed.code, "TOOL_NOT_ALLOWED");
  await assertNotRun(h, marker);
});

Deno.test("start() refuses unknown tools and invalid arguments by name", async () => {
  await using h = await Harness.create();
  assert.equal(refusalOf(await h.run("fs.read", {})).code, "UNKNOWN_TOOL");
  const bad = refusalOf(await h.run("cmd.run", { argv: ["ls"], timeout_secs: 0, cwdd: "/" }));
  assert.equal(bad.code, "INVALID_ARGUMENTS");
  assert.match(bad.message, /timeout_secs/);
  assert.match(bad.message, /cwdd/);
  h.runner.start({ callId: "j", tool: "cmd.run", argumentsJson: "{argv:" });
  assert.match(refusalOf(await h.final("j")).message, /not valid JSON/);
});

Deno.test({
  name: "start() refuses a cwd outside the mount points, symlinks included",
  ...unix,
  async fn() {
    const outside = await Deno.realPath(await Deno.makeTempDir());
    await using h = await Harness.create();
    try {
      await Deno.symlink(outside, join(h.dir, "escape"));
      await Deno.mkdir(`${h.dir}2`);
      for (const cwd of [outside, join(h.dir, "escape"), `${h.dir}2`, join(h.dir, "..")]) {
        const refused = refusalOf(await h.run("cmd.run", { argv: ["true"], cwd }));
        assert.equal(refused.code, "CWD_NOT_ALLOWED", cwd);
        assert.match(refused.message, /mount_points/);
      }
      const missing = refusalOf(
        await h.run("cmd.run", { argv: ["true"], cwd: join(h.dir, "nope") }),
      );
      assert.equal(missing.code, "CWD_MISSING");
      await Deno.mkdir(join(h.dir, "sub"));
      const ok = await h.run("cmd.run", { argv: ["pwd"], cwd: "sub" });
      assert.equal(ok.case, "exit");
      assert.equal(h.output("stdout").trim(), join(h.dir, "sub"));
    } finally {
      await Deno.remove(outside, { recursive: true });
      await Deno.remove(`${h.dir}2`).catch(() => {});
    }
  },
});

Deno.test({
  name: "start() refuses BUSY at max_concurrent_calls without queueing, and duplicates",
  ...unix,
  async fn() {
    await using h = await Harness.create({ maxConcurrent: 2 });
    const slow = JSON.stringify({ argv: ["sleep", "30"] });
    h.runner.start({ callId: "a", tool: "cmd.run", argumentsJson: slow });
    h.runner.start({ callId: "b", tool: "cmd.run", argumentsJson: slow });
    const dup = refusalOf(await h.run("cmd.run", { argv: ["true"] }, { callId: "a" }));
    assert.equal(dup.code, "DUPLICATE_CALL");
    const busy = refusalOf(await h.run("echo", {}));
    assert.equal(busy.code, "BUSY");
    assert.equal(busy.message, "2 calls already running (edge.max_concurrent_calls = 2)");
    assert.equal(h.runner.running, 2);
    h.runner.cancel("a", "test over");
    assert.equal((await h.final("a")).case, "exit");
    assert.equal((await h.run("echo", {})).case, "exit");
    await h.runner.shutdown();
    assert.equal((await h.final("b")).case, "exit");
    assert.equal(h.runner.running, 0);
    const late = refusalOf(await h.run("echo", {}));
    assert.equal(late.code, "SHUTTING_DOWN");
  },
});

Deno.test("echo returns its arguments as the result without a process", async () => {
  await using h = await Harness.create();
  const args = { message: "ping", data: { n: 1, list: [true, null] } };
  const event = await h.run("echo", args);
  assert.equal(event.case, "exit");
  assert.equal(event.value.exitCode, 0);
  assert.deepEqual(JSON.parse(event.value.resultJson), args);
  assert.equal(h.seen.length, 1);
  assert.equal(refusalOf(await h.run("echo", { other: 1 })).code, "INVALID_ARGUMENTS");
});

Deno.test("start() never emits inside the caller's start()", async () => {
  await using h = await Harness.create({ localTools: [] });
  h.runner.start({ callId: "x", tool: "echo", argumentsJson: "{}" });
  assert.equal(h.seen.length, 0);
  assert.equal(refusalOf(await h.final("x")).code, "TOOL_NOT_ALLOWED");
});
