// The suite runner behind `deno task test`: every test file runs in a `deno test` process of its
// own, a few at a time, after one type check of them all.
//
// Why not `deno test --parallel`: that runs every file inside one process, so a native crash in
// any of them ends the whole run with no summary. Deno 2.9's node:http2 has such a crash: memory
// corruption in its nghttp2 binding that surfaces when a GOAWAY is processed, as the assertion
// `find_stream_on_goaway_func` (SIGABRT) or as a bare SIGSEGV (denoland/deno#36788, open
// upstream). Here a crash costs only the file it happened in, which is named. A runtime crash
// (SIGSEGV or SIGBUS, which TypeScript cannot cause, or that SIGABRT) runs its file once more;
// any other ending without a summary, or a second crash, counts as a failure.
//
// deno run -A scripts/test.ts [--jobs N] [--no-check] [path …]   (paths: files or directories)
// The last line keeps Deno's own summary form: `ok | N passed | N failed | N ignored (time)`.
import { join, relative, resolve } from "node:path";

const root = resolve(new URL("..", import.meta.url).pathname);
const NGHTTP2_ABORT = /nghttp2_session\.c:\d+: int find_stream_on_goaway_func/;

/** The Deno runtime crashed under the file (not a test that failed, nor a test that exited). */
export function runtimeCrash(run: { summary: boolean; signal: string | null; output: string }) {
  if (run.summary) return undefined;
  if (run.signal === "SIGSEGV" || run.signal === "SIGBUS") {
    return `the runtime crashed (${run.signal})`;
  }
  if (run.signal === "SIGABRT" && NGHTTP2_ABORT.test(run.output)) {
    return "the runtime aborted in nghttp2's GOAWAY assertion";
  }
  return undefined;
}

interface Options {
  jobs: number;
  check: boolean;
  paths: string[];
}

function parseArgs(args: string[]): Options {
  const options: Options = {
    jobs: Number(Deno.env.get("DENO_JOBS")) || navigator.hardwareConcurrency || 2,
    check: true,
    paths: [],
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--jobs") options.jobs = Math.max(1, Number(args[++i]) || 1);
    else if (arg === "--no-check") options.check = false;
    else if (arg.startsWith("-")) throw new Error(`unknown option ${arg}`);
    else options.paths.push(arg);
  }
  if (options.paths.length === 0) options.paths.push(".");
  return options;
}

const isTestFile = (name: string) => /(^|[._])test\.(ts|tsx|js|mjs)$/.test(name);

async function collect(path: string, into: string[]): Promise<void> {
  const full = resolve(root, path);
  const info = await Deno.stat(full);
  if (info.isFile) {
    into.push(relative(root, full));
    return;
  }
  for await (const entry of Deno.readDir(full)) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const child = join(full, entry.name);
    if (entry.isDirectory) await collect(child, into);
    else if (entry.isFile && isTestFile(entry.name)) into.push(relative(root, child));
  }
}

interface Counts {
  passed: number;
  failed: number;
  ignored: number;
}

/** Deno's closing line of one `deno test` run: `ok | 3 passed (2 steps) | 0 failed | 1 ignored`. */
export function parseSummary(output: string): Counts | undefined {
  const line = output.split("\n").reverse().find((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  if (!line) return undefined;
  const count = (word: string) => Number(line.match(new RegExp(`\\| (\\d+) ${word}`))?.[1] ?? 0);
  return { passed: count("passed"), failed: count("failed"), ignored: count("ignored") };
}

interface FileRun {
  counts?: Counts;
  output: string;
  signal: Deno.Signal | null;
  code: number;
}

const children = new Set<Deno.ChildProcess>();

async function runFile(file: string): Promise<FileRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", file],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  let output = "";
  const prefix = `./${file} => `;
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      output += text;
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      if (lines.length) {
        await sink.write(
          new TextEncoder().encode(lines.map((l) => (l ? prefix + l : "") + "\n").join("")),
        );
      }
    }
    if (pending) await sink.write(new TextEncoder().encode(prefix + pending + "\n"));
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const status = await child.status;
  children.delete(child);
  return { counts: parseSummary(output), output, signal: status.signal, code: status.code };
}

async function main() {
  const options = parseArgs(Deno.args);
  const files: string[] = [];
  for (const path of options.paths) await collect(path, files);
  // End-to-end files first: they are the long ones, and starting them early keeps the tail short.
  files.sort((a, b) =>
    Number(!a.startsWith("tests/")) - Number(!b.startsWith("tests/")) || a.localeCompare(b)
  );
  if (files.length === 0) throw new Error(`no test files under ${options.paths.join(", ")}`);

  if (options.check) {
    const check = await new Deno.Command(Deno.execPath(), { args: ["check", ...files], cwd: root })
      .output();
    if (!check.success) {
      console.log(`FAILED | 0 passed | ${files.length} failed (type check)`);
      Deno.exit(1);
    }
  }

  Deno.addSignalListener("SIGINT", () => {
    for (const child of children) {
      try {
        child.kill("SIGINT");
      } catch { /* already gone */ }
    }
    Deno.exit(130);
  });

  const started = performance.now();
  const total: Counts = { passed: 0, failed: 0, ignored: 0 };
  const failedFiles: string[] = [];
  const rerun: string[] = [];
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      let run = await runFile(file);
      const crash = runtimeCrash({ summary: Boolean(run.counts), ...run });
      if (crash) {
        console.log(`./${file} => ${crash} (denoland/deno#36788); running it once more`);
        rerun.push(`${file} (${crash})`);
        run = await runFile(file);
      }
      const counts = run.counts ?? { passed: 0, failed: 1, ignored: 0 };
      if (!run.counts) {
        console.log(
          `./${file} => ended without a summary (exit ${run.code}, signal ${run.signal})`,
        );
      }
      total.passed += counts.passed;
      total.failed += counts.failed;
      total.ignored += counts.ignored;
      if (counts.failed) failedFiles.push(file);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.jobs, files.length) }, worker));

  const seconds = Math.round((performance.now() - started) / 1000);
  const time = seconds >= 60 ? `${Math.floor(seconds / 60)}m${seconds % 60}s` : `${seconds}s`;
  console.log("");
  if (rerun.length) console.log(`run again after a runtime crash:\n  ${rerun.join("\n  ")}`);
  if (failedFiles.length) console.log(`files with failures:\n  ${failedFiles.join("\n  ")}`);
  const verdict = total.failed ? "FAILED" : "ok";
  console.log(
    `${verdict} | ${total.passed} passed | ${total.failed} failed | ${total.ignored} ignored ` +
      `(${files.length} files, ${time})`,
  );
  Deno.exit(total.failed ? 1 : 0);
}

if (import.meta.main) await main();
