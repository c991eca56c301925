// The suite runner confines a crash to its file: a file that aborts is a failure with a name, the
// other files still report, and only nghttp2's known GOAWAY abort earns one more run.
import assert from "node:assert/strict";
import { parseSummary, runtimeCrash } from "./test.ts";

Deno.test("parseSummary() reads Deno's closing line, steps and ignored included", () => {
  assert.deepEqual(parseSummary("x\nok | 3 passed (12 steps) | 0 failed (2s)\n"), {
    passed: 3,
    failed: 0,
    ignored: 0,
  });
  assert.deepEqual(parseSummary("FAILED | 1 passed | 2 failed | 4 ignored (9ms)"), {
    passed: 1,
    failed: 2,
    ignored: 4,
  });
  assert.equal(parseSummary("error: Module not found"), undefined);
});

Deno.test("a file that aborts fails alone; the known nghttp2 abort is run once more", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/fine_test.ts`, 'Deno.test("fine", () => {});\n');
    await Deno.writeTextFile(
      `${dir}/abort_test.ts`,
      'Deno.test("abort", () => { Deno.kill(Deno.pid, "SIGABRT"); });\n',
    );
    // Says what the real abort says where libc says it (file descriptor 2 itself, not through
    // deno test's capture of a test's output, which dies with the process), then aborts; its
    // runs are counted.
    await Deno.writeTextFile(
      `${dir}/goaway_test.ts`,
      `const runs = Number(Deno.readTextFileSync(Deno.env.get("RUNS_FILE")!));
Deno.writeTextFileSync(Deno.env.get("RUNS_FILE")!, String(runs + 1));
Deno.test("goaway", () => {
  if (runs > 0) return;
  const fd2 = Deno.openSync("/dev/stderr", { write: true });
  fd2.writeSync(new TextEncoder().encode("deno: nghttp2/lib/nghttp2_session.c:2402: int find_stream_on_goaway_func(void *, void *): Assertion failed.\\n"));
  Deno.kill(Deno.pid, "SIGABRT");
});
`,
    );
    await Deno.writeTextFile(`${dir}/runs`, "0");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./test.ts", import.meta.url).pathname, "--no-check", dir],
      env: { RUNS_FILE: `${dir}/runs` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 1, text);
    assert.match(text, /abort_test\.ts => ended without a summary \(exit 134, signal SIGABRT\)/);
    assert.match(text, /goaway_test\.ts => the runtime aborted in nghttp2's GOAWAY assertion/);
    assert.equal(await Deno.readTextFile(`${dir}/runs`), "2");
    assert.match(text.trim().split("\n").at(-1)!, /^FAILED \| 2 passed \| 1 failed \| 0 ignored/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtimeCrash() names a runtime crash, never a failed test or a program's own exit", () => {
  const crash = (summary: boolean, signal: string | null, output = "") =>
    runtimeCrash({ summary, signal, output });
  assert.equal(crash(false, "SIGSEGV"), "the runtime crashed (SIGSEGV)");
  assert.equal(crash(false, "SIGBUS"), "the runtime crashed (SIGBUS)");
  assert.equal(
    crash(
      false,
      "SIGABRT",
      "deno: nghttp2/lib/nghttp2_session.c:2402: int find_stream_on_goaway_func",
    ),
    "the runtime aborted in nghttp2's GOAWAY assertion",
  );
  assert.equal(crash(false, "SIGABRT"), undefined, "another abort is a failure");
  assert.equal(crash(false, null), undefined, "an exit without a summary is a failure");
  assert.equal(crash(true, "SIGSEGV"), undefined, "a summary was printed: the tests ran");
});
