// The scale bench's child processes: `deno run` under a raised open-file limit, with JSON lines
// on stdout (answers and reports) and a log on stderr of which the tail is kept for errors.
import type { ControllerReport } from "./scale_controller.ts";
import type { WorkerReport } from "./scale_worker.ts";

const BENCH = new URL(".", import.meta.url).pathname;
const encoder = new TextEncoder();

/**
 * Spawns `deno run -A <flags> <script> <args>` with the soft open-file limit raised to `nofile`
 * (or to the hard limit when that is lower): every stream is a socket, and the default soft
 * limit (often 1,024) is far below a 15,000-daemon fleet. `exec` keeps the pid the deno one's,
 * so signals reach it.
 */
export function spawnDeno(script: string, args: string[], nofile: number, flags: string[] = []) {
  return new Deno.Command("bash", {
    args: [
      "-c",
      'ulimit -Sn "$0" 2>/dev/null || ulimit -Sn hard; exec "$@"',
      String(nofile),
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      ...flags,
      `${BENCH}${script}`,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Calls `onLine` with each JSON line of `stream`; resolves when it ends. */
export async function readJsonLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (value: unknown) => void,
): Promise<void> {
  let buffered = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) if (line.trim()) onLine(JSON.parse(line));
  }
}

/** A child process with a line protocol: stdin commands, stdout JSON, stderr log. */
class Child {
  readonly process: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pumps: Promise<void>[];
  /** The last 8 KB of stderr, and how many lines it had in all. */
  stderrTail = "";
  stderrLines = 0;

  constructor(process: Deno.ChildProcess, onLine: (value: unknown) => void) {
    this.process = process;
    this.#writer = process.stdin.getWriter();
    this.#pumps = [
      readJsonLines(process.stdout, onLine).catch(() => {}),
      (async () => {
        for await (const text of process.stderr.pipeThrough(new TextDecoderStream())) {
          this.stderrTail = (this.stderrTail + text).slice(-8192);
          for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) {
            this.stderrLines++;
          }
        }
      })().catch(() => {}),
    ];
  }

  send(line: string): Promise<void> {
    return this.#writer.write(encoder.encode(line + "\n"));
  }

  /** Sends `signal` (SIGKILL after `graceMs`) and waits for the exit and the last output. */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 60_000): Promise<Deno.CommandStatus> {
    try {
      this.process.kill(signal);
    } catch { /* already gone */ }
    const killer = setTimeout(() => {
      try {
        this.process.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    const status = await this.process.status;
    clearTimeout(killer);
    await this.#writer.close().catch(() => {});
    await Promise.all(this.#pumps);
    return status;
  }
}

/** The controller child (bench/scale_controller.ts): one answer per command, in order. */
export class ControllerChild {
  readonly #child: Child;
  readonly #waiting: ((value: unknown) => void)[] = [];
  readonly ready: Promise<{ port: number; endpoint: string; db: string }>;

  private constructor(process: Deno.ChildProcess) {
    let ready!: (value: { port: number; endpoint: string; db: string }) => void;
    let failed!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    let first = true;
    this.#child = new Child(process, (value) => {
      if (first) {
        first = false;
        ready(value as { port: number; endpoint: string; db: string });
      } else this.#waiting.shift()?.(value);
    });
    // Gone (crashed, or stopped by the bench): nobody may wait forever for an answer.
    void process.status.then((status) => {
      for (const resolve of this.#waiting.splice(0)) resolve({ error: "the controller exited" });
      if (first) failed(new Error(`the controller exited (${status.code}):\n${this.stderrTail}`));
    });
  }

  static async start(configPath: string, dataDir: string, port: number, nofile: number) {
    // AEGIS_SCALE_CONTROLLER_FLAGS: more `deno run` flags for the controller, e.g. to profile it
    // ("--cpu-prof --cpu-prof-dir=/tmp/prof"; written when it exits on SIGTERM, not SIGKILL).
    const extra = (Deno.env.get("AEGIS_SCALE_CONTROLLER_FLAGS") ?? "").split(/\s+/).filter(Boolean);
    const child = new ControllerChild(spawnDeno(
      "scale_controller.ts",
      ["--config", configPath, "--data-dir", dataDir, "--port", String(port)],
      nofile,
      ["--v8-flags=--expose-gc", ...extra],
    ));
    return { child, ...(await child.ready) };
  }

  get pid(): number {
    return this.#child.process.pid;
  }

  get stderrTail(): string {
    return this.#child.stderrTail;
  }

  get logLines(): number {
    return this.#child.stderrLines;
  }

  /** Sends one command and waits for its answer. Commands go one at a time. */
  async command<T = unknown>(line: string): Promise<T> {
    const answer = new Promise<unknown>((resolve) => this.#waiting.push(resolve));
    await this.#child.send(line);
    const value = await answer as { error?: string };
    if (value.error) throw new Error(`controller: ${line}: ${value.error}`);
    return value as T;
  }

  report(): Promise<ControllerReport> {
    return this.command<ControllerReport>("report");
  }

  stats(): Promise<ControllerReport> {
    return this.command<ControllerReport>("stats");
  }

  stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    return this.#child.stop(signal);
  }
}

/** A worker child (bench/scale_worker.ts) and the last report it sent. */
export class WorkerChild {
  readonly #child: Child;
  last?: WorkerReport;
  readonly #watchers = new Set<() => void>();

  constructor(planFile: string, nofile: number) {
    this.#child = new Child(
      spawnDeno("scale_worker.ts", [planFile], nofile, ["--v8-flags=--expose-gc"]),
      (value) => {
        this.last = value as WorkerReport;
        for (const watcher of this.#watchers) watcher();
      },
    );
  }

  get stderrTail(): string {
    return this.#child.stderrTail;
  }

  get exited(): Promise<Deno.CommandStatus> {
    return this.#child.process.status;
  }

  send(line: string): Promise<void> {
    return this.#child.send(line);
  }

  /** Resolves with the first report (the last one, or a later one) that `test` accepts. */
  until(test: (report: WorkerReport) => boolean): Promise<WorkerReport> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.last && test(this.last)) {
          this.#watchers.delete(check);
          resolve(this.last);
        }
      };
      this.#watchers.add(check);
      check();
      void this.exited.then((status) => {
        if (!this.#watchers.has(check)) return;
        this.#watchers.delete(check);
        reject(new Error(`a worker exited (${status.code}):\n${this.#child.stderrTail}`));
      });
    });
  }

  stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    return this.#child.stop(signal, 10_000);
  }
}
