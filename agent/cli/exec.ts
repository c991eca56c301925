// `aegis edge exec <node-id> -- <argv…>`: run a command on a host, print its output live, and
// exit with its exit code. A timeout says so (exit 124) and leaves no remote process behind;
// Ctrl-C cancels the remote command too.
import type { Command } from "@commander-js/extra-typings";
import { AegisError } from "../../shared/errors.ts";
import { parseDuration } from "../../shared/duration.ts";
import { fromBase64 } from "../../shared/crypto/encoding.ts";
import type { Io } from "../../shared/cli/io.ts";
import { OperatorApi, resolveTarget, type TargetOptions } from "../operator/api_client.ts";
import type { CliContext } from "./context.ts";
import { readNdjson } from "./ndjson.ts";

export interface ExecOptions extends TargetOptions {
  timeout: string;
  cwd?: string;
  env?: string[];
  shell?: string;
  stdinFile?: string;
}

type Line =
  | { type: "started"; call_id: string }
  | { type: "stdout" | "stderr"; data: string }
  | {
    type: "exit";
    exit_code: number;
    timed_out: boolean;
    truncated: boolean;
    duration_ms: number;
    signal: string;
  }
  | { type: "refused"; code: string; message: string }
  | { type: "error"; error: { code: string; message: string; hint?: string } };

export async function exec(
  nodeId: string,
  argv: string[],
  options: ExecOptions,
  io: Io,
): Promise<number> {
  if ((argv.length > 0) === Boolean(options.shell)) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      'give a command after `--`, or --shell "…", not both',
      {
        hint: "e.g. aegis edge exec n-1a2b -- uname -a",
      },
    );
  }
  const timeoutSecs = Math.max(1, Math.round(parseDuration(options.timeout, "--timeout") / 1000));
  const body = {
    ...(options.shell ? { shell: options.shell } : { argv }),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env?.length ? { env: parseEnv(options.env) } : {}),
    ...(options.stdinFile ? { stdin: await readStdin(options.stdinFile) } : {}),
    timeout_secs: timeoutSecs,
  };
  const api = new OperatorApi(resolveTarget(options, Deno.env.toObject()));
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const response = await api.request(`/v1/edge/hosts/${encodeURIComponent(nodeId)}/exec`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: abort.signal,
    });
    return await relay(response, io, timeoutSecs, api.target.display, nodeId);
  } catch (error) {
    if (abort.signal.aborted) {
      io.err("✖ interrupted; the remote command was cancelled\n");
      return 130;
    }
    throw error;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

async function relay(
  response: Response,
  io: Io,
  timeoutSecs: number,
  endpoint: string,
  nodeId: string,
): Promise<number> {
  const out = new TextDecoder();
  const err = new TextDecoder();
  const hint =
    `The command may have run on, or finished; its record: \`aegis edge hosts show ${nodeId}\`.`;
  for await (const line of readNdjson<Line>(response.body!, endpoint, hint)) {
    switch (line.type) {
      case "stdout":
        io.out(out.decode(fromBase64(line.data), { stream: true }));
        break;
      case "stderr":
        io.err(err.decode(fromBase64(line.data), { stream: true }));
        break;
      case "exit":
        if (line.timed_out) {
          io.err(`✖ timed out after ${timeoutSecs}s; the remote process tree was killed\n`);
          return 124;
        }
        return line.exit_code;
      case "refused":
        io.err(`✖ the host refused the command (${line.code}): ${line.message}\n`);
        return 126;
      case "error":
        throw new AegisError(line.error.code as never, line.error.message, {
          hint: line.error.hint,
        });
    }
  }
  throw new AegisError(
    "UNREACHABLE",
    "the controller ended the stream before the command finished",
  );
}

function parseEnv(pairs: string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new AegisError("INVALID_ARGUMENT", `--env "${pair}" is not NAME=VALUE`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }));
}

async function readStdin(file: string): Promise<string> {
  return file === "-"
    ? await new Response(Deno.stdin.readable).text()
    : await Deno.readTextFile(file);
}

export function registerExec(edge: Command, { io, setExit }: CliContext): void {
  edge.command("exec")
    .description("run a command on a host and stream its output (exit status is the remote one)")
    .argument("<node-id>")
    .argument("[argv...]", "the command, after --")
    .option("--timeout <duration>", "kill the remote process tree after this long", "30s")
    .option("--cwd <dir>", "working directory on the host (must be under a mount point)")
    .option(
      "--env <NAME=VALUE...>",
      "environment; VALUE may be secret://NAME (resolved on the host)",
    )
    .option("--shell <command>", "run a shell command line instead of argv")
    .option("--stdin-file <file>", "send this file as standard input (`-` for ours)")
    .option("--endpoint <url>", "controller endpoint (or AEGIS_ENDPOINT)")
    .option("--token <jwt>", "operator token (or AEGIS_TOKEN)")
    .action(async (nodeId, argv, opts) => setExit(await exec(nodeId, argv, opts, io)));
}
