// A ToolRunner wired to plain arrays, for tests: every event with its arrival time, every log
// line, and a promise per call for its final event.
import { EdgeConfigSchema } from "../../shared/config/edge_config.ts";
import { ToolRunner } from "./runner.ts";
import type { ToolCallRequest, ToolEventBody } from "./types.ts";

export interface Seen {
  callId: string;
  event: ToolEventBody;
  at: number;
}

export interface HarnessOptions {
  localTools?: string[];
  maxConcurrent?: number;
  secrets?: Record<string, string>;
  /** Extra mount points after the harness's own temp directory. */
  mounts?: string[];
  /** The daemon state directory to protect; by default `.aegis/edge` in the temp dir. */
  stateDir?: string;
  /** edge.env_allow and edge.secret_env; the config's defaults when absent. */
  envAllow?: string[];
  secretEnv?: string[];
  sandbox?: "best-effort" | "required" | "off";
}

export class Harness implements AsyncDisposable {
  readonly seen: Seen[] = [];
  readonly logs: string[] = [];
  readonly runner: ToolRunner;
  // Per call id, final events not yet awaited and awaits not yet answered: a refused duplicate
  // shares its call id with the call still running.
  readonly #unclaimed = new Map<string, ToolEventBody[]>();
  readonly #waiting = new Map<string, Array<(event: ToolEventBody) => void>>();

  private constructor(readonly dir: string, options: HarnessOptions) {
    const config = EdgeConfigSchema.parse({
      local_tools: options.localTools ?? ["shell", "echo"],
      mount_points: [dir, ...options.mounts ?? []],
      edge: {
        max_concurrent_calls: options.maxConcurrent ?? 4,
        env_allow: options.envAllow,
        secret_env: options.secretEnv,
        sandbox: options.sandbox,
      },
    });
    const secrets = options.secrets ?? {};
    const ctx = {
      config,
      stateDir: options.stateDir ?? `${dir}/.aegis/edge`,
      resolveSecret: (name: string) => Promise.resolve(secrets[name]),
      log: (message: string) => void this.logs.push(message),
    };
    this.runner = new ToolRunner(ctx, (callId, event) => {
      this.seen.push({ callId, event, at: performance.now() });
      if (event.case !== "exit" && event.case !== "refused") return;
      const waiter = this.#waiting.get(callId)?.shift();
      if (waiter) waiter(event);
      else this.#unclaimed.set(callId, [...this.#unclaimed.get(callId) ?? [], event]);
    });
  }

  static async create(options: HarnessOptions = {}): Promise<Harness> {
    return new Harness(await Deno.realPath(await Deno.makeTempDir()), options);
  }

  /** Starts a call and resolves with its final event. */
  run(tool: string, args: unknown, extra: Partial<ToolCallRequest> = {}): Promise<ToolEventBody> {
    const callId = extra.callId ?? crypto.randomUUID();
    this.runner.start({ callId, tool, argumentsJson: JSON.stringify(args), ...extra });
    return this.final(callId);
  }

  /** The call id's next final event not yet claimed by an earlier final(). */
  final(callId: string): Promise<ToolEventBody> {
    const event = this.#unclaimed.get(callId)?.shift();
    if (event) return Promise.resolve(event);
    return new Promise((resolve) => {
      this.#waiting.set(callId, [...this.#waiting.get(callId) ?? [], resolve]);
    });
  }

  /** Everything a call wrote on one stream, decoded. */
  output(stream: "stdout" | "stderr", callId?: string): string {
    const chunks = this.seen.filter((s) => s.event.case === stream)
      .filter((s) => callId === undefined || s.callId === callId)
      .map((s) => s.event.value as Uint8Array);
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  }

  /** The pid the runner logged for the most recent spawn. */
  lastPid(): number {
    const line = this.logs.findLast((l) => / pid \d+$/.test(l));
    if (!line) throw new Error("no process was spawned");
    return Number(line.split(" pid ")[1]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.runner.shutdown();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Live (non-zombie) members of a process group. */
export async function liveInGroup(pgid: number): Promise<number[]> {
  const out = await new Deno.Command("ps", { args: ["-A", "-o", "pid=,pgid=,stat="] }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, group, stat]) => Number(group) === pgid && stat && !stat.startsWith("Z"))
    .map(([pid]) => Number(pid));
}
