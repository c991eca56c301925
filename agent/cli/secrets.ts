// `aegis edge secrets set|get|list|rm`: the host's local secrets, which tool calls reference as
// `secret://NAME` and the daemon resolves on the host. A value is never taken from argv, where
// `ps` and shell history would keep it.
import { password } from "@inquirer/prompts";
import type { Command } from "@commander-js/extra-typings";
import { AegisError } from "../../shared/errors.ts";
import { type CliContext, outputOption } from "./context.ts";
import { edgePaths, homeDir } from "../state/paths.ts";
import {
  assertSecretName,
  getSecret,
  listSecrets,
  removeSecret,
  SECRET_NAME_RULE,
  type SecretInfo,
  setSecret,
} from "../secrets/store.ts";

/** What the commands read besides their arguments; tests stand in a terminal and a pipe. */
export interface SecretsDeps {
  env(): Record<string, string | undefined>;
  stdinIsTerminal(): boolean;
  stdoutIsTerminal(): boolean;
  readStdin(): Promise<Uint8Array>;
  /** Asks for a value without echoing it. */
  promptHidden(message: string): Promise<string>;
}

export const processSecretsDeps: SecretsDeps = {
  env: () => Deno.env.toObject(),
  stdinIsTerminal: () => Deno.stdin.isTerminal(),
  stdoutIsTerminal: () => Deno.stdout.isTerminal(),
  readStdin: () => new Response(Deno.stdin.readable).bytes(),
  promptHidden: (message) => password({ message }),
};

const SET_HELP = `
The value is never taken from the command line (\`ps\` and shell history would keep it). It is
read, in this order, from:
  --from-file FILE   the file's contents (\`-\` for standard input)
  standard input     when it is not a terminal: printf %s "$TOKEN" | aegis edge secrets set NAME
  a hidden prompt    when run in a terminal
One trailing newline (as \`echo\` or an editor adds) is dropped from piped and file values.

Names are ${SECRET_NAME_RULE}.
Tool calls reference a secret as secret://NAME; it is resolved on this host only.`;

export function registerSecrets(
  edge: Command,
  { io, setExit }: CliContext,
  deps: SecretsDeps = processSecretsDeps,
): void {
  const dir = () => edgePaths(homeDir(deps.env())).secrets;
  const secrets = edge.command("secrets")
    .description("secrets kept on this host for tool calls (secret://NAME)");

  secrets.command("set")
    .description("store a secret (value from stdin, --from-file or a hidden prompt; never argv)")
    .argument("<name>", "the secret's name")
    .option("--from-file <file>", "read the value from a file (`-` for standard input)")
    // Extra arguments are accepted only to refuse them with a better message than commander's.
    .allowExcessArguments()
    .addHelpText("after", SET_HELP)
    .action(async (name, opts, cmd) => {
      assertSecretName(name);
      if (cmd.args.length > 1) {
        throw new AegisError(
          "INVALID_ARGUMENT",
          "a secret's value is never taken from the command line",
          {
            hint: `Pipe it in (\`printf %s "$VALUE" | aegis edge secrets set ${name}\`), ` +
              "pass --from-file FILE, or run it in a terminal to be prompted.",
          },
        );
      }
      const value = await readValue(name, opts.fromFile, io.interactive, deps);
      await setSecret(dir(), name, value);
      io.err(`✔ Stored secret ${name} (${new TextEncoder().encode(value).length} bytes)\n`);
      setExit(0);
    });

  secrets.command("get")
    .description("print a secret's value on standard output")
    .argument("<name>", "the secret's name")
    .action(async (name) => {
      const value = await getSecret(dir(), name);
      if (value === undefined) throw notFound(name);
      // Exact bytes for `$(...)` and pipes; a newline only so a terminal prompt starts clean.
      io.out(deps.stdoutIsTerminal() ? `${value}\n` : value);
      setExit(0);
    });

  secrets.command("list")
    .description("the secrets on this host: names, sizes and update times (never values)")
    .addOption(outputOption())
    .action(async (opts) => {
      const list = await listSecrets(dir());
      if (opts.output === "json") io.out(JSON.stringify(list, null, 2) + "\n");
      else if (list.length === 0) {
        io.err("No secrets on this host. Add one with `aegis edge secrets set NAME`.\n");
      } else io.out(renderList(list));
      setExit(0);
    });

  secrets.command("rm")
    .description("delete a secret")
    .argument("<name>", "the secret's name")
    .action(async (name) => {
      if (!await removeSecret(dir(), name)) throw notFound(name);
      io.err(`✔ Removed secret ${name}\n`);
      setExit(0);
    });
}

async function readValue(
  name: string,
  fromFile: string | undefined,
  interactive: boolean,
  deps: SecretsDeps,
): Promise<string> {
  if (fromFile === "-" || (fromFile === undefined && !deps.stdinIsTerminal())) {
    return dropNewline(decode(await deps.readStdin(), "standard input"));
  }
  if (fromFile !== undefined) {
    const bytes = await Deno.readFile(fromFile).catch((error) => {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `cannot read --from-file ${fromFile}: ${(error as Error).message}`,
      );
    });
    return dropNewline(decode(bytes, fromFile));
  }
  if (!interactive) {
    throw new AegisError("INVALID_ARGUMENT", `no value given for secret ${name}`, {
      hint: `Pipe it in (\`printf %s "$VALUE" | aegis edge secrets set ${name}\`) ` +
        "or pass --from-file FILE.",
    });
  }
  try {
    return await deps.promptHidden(`Value for ${name}:`);
  } catch (error) {
    // Ctrl-C or Ctrl-D at the prompt.
    if (error instanceof Error && error.name === "ExitPromptError") {
      throw new AegisError("ABORTED", `cancelled; secret ${name} was not changed`);
    }
    throw error;
  }
}

/** Secrets are text: a value that is not UTF-8 would be stored mangled, so it is refused. */
function decode(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new AegisError("INVALID_ARGUMENT", `the value from ${source} is not UTF-8 text`, {
      hint: "Encode binary values first, e.g. with base64.",
    });
  }
}

function dropNewline(value: string): string {
  return value.replace(/\r?\n$/, "");
}

function notFound(name: string): AegisError {
  return new AegisError("NOT_FOUND", `no secret ${name} on this host`, {
    hint: "List them with `aegis edge secrets list`.",
    details: { name },
  });
}

function renderList(list: SecretInfo[]): string {
  const width = Math.max(4, ...list.map((s) => s.name.length));
  const bytesWidth = Math.max(5, ...list.map((s) => String(s.bytes).length));
  const rows = [
    `${"NAME".padEnd(width)}  ${"BYTES".padStart(bytesWidth)}  UPDATED`,
    ...list.map((s) =>
      `${s.name.padEnd(width)}  ${String(s.bytes).padStart(bytesWidth)}  ${s.updated_at}`
    ),
  ];
  return rows.join("\n") + "\n";
}
