// The operator token is a bearer credential: on the command line it shows in `ps`, in shell
// history and in audit logs of process starts. Every operator command that takes `--token`
// also takes `--token-file FILE` (`-` reads standard input); AEGIS_TOKEN works as before, and a
// token still given with `--token` works but is warned about.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { AegisError } from "../../shared/errors.ts";

/** Far above any real JWT (Keycloak's are a few KiB), far below a mistaken `--token-file /`. */
export const MAX_OPERATOR_TOKEN_BYTES = 64 * 1024;

export const TOKEN_ARGV_WARNING =
  "! --token puts the operator token in the process list (ps) and shell history; " +
  "set AEGIS_TOKEN or use --token-file FILE (`-` reads standard input)\n";

// deno-lint-ignore no-explicit-any
type AnyCommand = Command<any, any, any>;

/** Adds `--token-file` beside every `--token` in the tree, and resolves it before the action. */
export function addOperatorTokenFile(program: AnyCommand, io: Io): void {
  // Only operator commands: `edge enroll --token-file` reads an enrollment token itself.
  const operatorCommands = new Set<AnyCommand>();
  for (const command of walk(program)) {
    const has = (flag: string) => command.options.some((o) => o.long === flag);
    if (has("--token") && !has("--token-file")) {
      operatorCommands.add(command);
      command.option(
        "--token-file <file>",
        "read the operator token from FILE (`-` = standard input); keeps it out of ps",
      );
    }
  }
  program.hook("preAction", async (_program, action) => {
    if (!operatorCommands.has(action)) return;
    const opts = action.opts() as Record<string, unknown>;
    const { token, tokenFile } = opts as { token?: string; tokenFile?: string };
    if (token !== undefined && tokenFile !== undefined) {
      throw new AegisError("INVALID_ARGUMENT", "pass --token or --token-file, not both");
    }
    // Standard input can be read once: the token and, say, `exec --stdin-file -` cannot share it.
    const alsoStdin = Object.keys(opts).find((k) => k !== "tokenFile" && opts[k] === "-");
    if (tokenFile === "-" && alsoStdin) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        "--token-file - and another option both read standard input; give the token as a file",
      );
    }
    if (token !== undefined) io.err(TOKEN_ARGV_WARNING);
    if (tokenFile !== undefined) {
      action.setOptionValueWithSource("token", await readOperatorToken(tokenFile), "config");
    }
  });
}

export async function readOperatorToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readBounded(
      file === "-" ? Deno.stdin.readable : (await Deno.open(file)).readable,
      MAX_OPERATOR_TOKEN_BYTES,
    );
  } catch (error) {
    if (error instanceof AegisError) throw error;
    throw new AegisError(
      "INVALID_ARGUMENT",
      `cannot read --token-file ${file}: ${(error as Error).message}`,
    );
  }
  const token = text.trim();
  if (!token) throw new AegisError("INVALID_ARGUMENT", `--token-file ${file} is empty`);
  if (/\s/.test(token)) {
    throw new AegisError("INVALID_ARGUMENT", `--token-file ${file} holds more than one token`);
  }
  return token;
}

async function readBounded(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > limit) {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `--token-file is larger than ${limit} bytes: that is not an operator token`,
      );
    }
    chunks.push(chunk);
  }
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

function* walk(command: AnyCommand): Generator<AnyCommand> {
  yield command;
  for (const sub of command.commands) yield* walk(sub as AnyCommand);
}
