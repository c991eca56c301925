// What the soak tests measure of a process they started: resident memory and open file
// descriptors, read from /proc as an operator's monitoring would; and a cursor over a child's
// growing log, so counting lines thousands of times stays linear.
import { Background, CONTROLLER_MAIN, freePort } from "../support/processes.ts";
import type { ControllerProcess } from "../support/controller.ts";

export interface ProcessSample {
  /** VmRSS, KiB. */
  rssKiB: number;
  /** Entries in /proc/<pid>/fd. */
  fds: number;
}

/** True where /proc describes processes (Linux): elsewhere the soak tests are skipped. */
export const HAS_PROC = (() => {
  try {
    Deno.statSync(`/proc/${Deno.pid}/status`);
    return true;
  } catch {
    return false;
  }
})();

export function sample(pid: number): ProcessSample {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rss = status.match(/VmRSS:\s+(\d+) kB/);
  if (!rss) throw new Error(`no VmRSS for pid ${pid} (has it exited?)`);
  let fds = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
  return { rssKiB: Number(rss[1]), fds };
}

/** What the open descriptors are (sockets, pipes, files by path), each with its count. */
export function fdKinds(pid: number): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const kind = target.replace(/^(socket|pipe|anon_inode):.*$/, "$1");
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return kinds;
}

/** The kinds whose count changed from `before` to `after`, as "kind: 3 → 5" lines. */
export function fdChanges(before: Map<string, number>, after: Map<string, number>): string {
  const lines: string[] = [];
  for (const kind of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(kind) ?? 0;
    const b = after.get(kind) ?? 0;
    if (a !== b) lines.push(`  ${kind}: ${a} → ${b}`);
  }
  return lines.join("\n") || "  (no change by kind)";
}

export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** A loopback port free a moment ago (for a child's inspector). */
/** `deno run <script> <args>` as Background does, with the V8 inspector open on loopback. */
export function startInspectable(
  script: string,
  args: string[],
  env: Record<string, string>,
  v8Flags?: string,
): { process: Background; inspectorPort: number } {
  const inspectorPort = freePort();
  const command = [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
    `--inspect=127.0.0.1:${inspectorPort}`,
    script,
    ...args,
  ];
  return { process: new Background(script, args, env, command), inspectorPort };
}

/**
 * Restarts a controller started by startControllerProcess (same config, data and port) with its
 * inspector open, and attaches to it. controller.stop() stops the new process as the old.
 */
export async function reopenWithInspector(controller: ControllerProcess): Promise<Inspector> {
  await controller.process.stop();
  const { process, inspectorPort } = startInspectable(CONTROLLER_MAIN, [
    "run",
    "--config",
    controller.configPath,
    "--data-dir",
    controller.dataDir,
    "--port",
    String(controller.port),
  ], { HOME: controller.dataDir });
  controller.process = process;
  await process.waitFor(/\{"port":\d+/, 30_000);
  return await Inspector.attach(inspectorPort);
}

/**
 * The V8 inspector of a child process started by startInspectable(): the soak tests use it only to
 * run the collector before they read the child's RSS. A JS process gives memory back only after
 * a full collection, which V8 runs when it sees fit (its memory reducer: some seconds into a quiet
 * spell, the first time ~30 s after start, and not always then); reading RSS without one measures
 * the collector's schedule, not what the process holds. Going through the inspector needs no hook
 * in the product. No domain is enabled, so the inspector keeps nothing (no console messages).
 */
export class Inspector {
  #nextId = 0;
  readonly #pending = new Map<number, (message: InspectorReply) => void>();

  private constructor(readonly socket: WebSocket) {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data) as InspectorReply;
      const reply = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (reply) {
        this.#pending.delete(message.id!);
        reply(message);
      }
    };
  }

  static async attach(port: number, timeoutMs = 30_000): Promise<Inspector> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
        const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
        await new Promise((resolve, reject) => {
          socket.onopen = resolve;
          socket.onerror = () => reject(new Error(`cannot attach to the inspector on ${port}`));
        });
        return new Inspector(socket);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 30_000);
      this.#pending.set(id, (message) => {
        clearTimeout(timer);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result);
      });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Full collections (twice: the first may leave finalization work for the second). */
  async collect(): Promise<void> {
    await this.call("HeapProfiler.collectGarbage");
    await this.call("HeapProfiler.collectGarbage");
  }

  /** The JS heap in use (after collect(): what is reachable), KiB. */
  async heapUsedKiB(): Promise<number> {
    const reply = await this.call("Runtime.evaluate", {
      expression: "Deno.memoryUsage().heapUsed",
      returnByValue: true,
    }) as { result: { value: number } };
    return Math.round(reply.result.value / 1024);
  }

  close(): void {
    this.socket.close();
  }
}

interface InspectorReply {
  id?: number;
  result?: unknown;
  error?: { message: string };
}

/**
 * What `pid` holds: its RSS and fds after full collections and a moment for the freed pages to
 * go back to the system; the lowest of `times` such readings `gapMs` apart, as native buffers of
 * the moment (a connection's, the allocator's) come and go by a few MiB.
 */
export async function collectedSample(
  pid: number,
  inspector: Inspector,
  times = 3,
  gapMs = 1_000,
): Promise<ProcessSample & { heapUsedKiB: number }> {
  let lowest = await collectedOnce(pid, inspector);
  for (let i = 1; i < times; i++) {
    await sleep(gapMs);
    const next = await collectedOnce(pid, inspector);
    if (next.rssKiB < lowest.rssKiB) lowest = next;
  }
  return lowest;
}

async function collectedOnce(
  pid: number,
  inspector: Inspector,
): Promise<ProcessSample & { heapUsedKiB: number }> {
  await inspector.collect();
  await sleep(500);
  return { ...sample(pid), heapUsedKiB: await inspector.heapUsedKiB() };
}

/** Counts occurrences of `needle` in a Background's stderr, reading only what is new each time. */
export class LogCursor {
  #offset = 0;
  count = 0;

  constructor(readonly process: Background, readonly needle: string) {}

  /** Advances over what arrived since the last call; returns the total count. */
  poll(): number {
    const text = this.process.stderr;
    for (;;) {
      const at = text.indexOf(this.needle, this.#offset);
      if (at < 0) break;
      this.count++;
      this.#offset = at + this.needle.length;
    }
    // A needle cut in half at the end of the text is found on the next call.
    this.#offset = Math.max(this.#offset, text.length - this.needle.length);
    return this.count;
  }

  /** Waits (polling every `everyMs`) until the count reaches `target`. */
  async waitFor(target: number, timeoutMs: number, everyMs = 2): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.poll() < target) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${target} × "${this.needle}" (saw ${this.count})\n` +
            this.process.stderr.slice(-4000),
        );
      }
      await sleep(everyMs);
    }
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
