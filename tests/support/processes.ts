// Real child processes for end-to-end tests: the controller and the `aegis` binary, run from
// source with `deno run` exactly as a compiled binary would run them.
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const AGENT_MAIN = `${ROOT}agent/main.ts`;
export const CONTROLLER_MAIN = `${ROOT}controller/main.ts`;

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runDeno(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<Output> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** A TCP port free on 127.0.0.1 a moment ago, for a child process to listen on. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A long-running child whose stderr is collected as it runs. */
export class Background {
  readonly child: Deno.ChildProcess;
  stderr = "";
  readonly #lines: Array<(line: string) => void> = [];
  readonly #pumps: Promise<void>[] = [];
  stdout = "";

  /** Runs `deno run` on a script, or any other program when `command` is given. */
  constructor(script: string, args: string[], env: Record<string, string>, command?: string[]) {
    const [program, ...programArgs] = command ??
      [Deno.execPath(), "run", "-A", "--quiet", script, ...args];
    this.child = new Deno.Command(program, {
      args: programArgs,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps.push(this.#pump(this.child.stderr, (t) => this.stderr += t));
    this.#pumps.push(this.#pump(this.child.stdout, (t) => this.stdout += t));
  }

  /** Waits until stdout or stderr contains `pattern`. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = this.stdout.match(pattern) ?? this.stderr.match(pattern);
      if (match) return match;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(
      `timed out waiting for ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
    );
  }

  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    // A process that ignores the signal for 15 s is killed, so one stuck shutdown cannot hang the suite.
    const killer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
    const status = await this.child.status;
    clearTimeout(killer);
    await Promise.all(this.#pumps);
    return status;
  }

  async #pump(stream: ReadableStream<Uint8Array>, append: (text: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      append(text);
      for (const listener of this.#lines) listener(text);
    }
  }
}

export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}
