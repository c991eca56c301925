// What a CLI command writes to. Commands take an Io instead of touching Deno.std* so tests can
// read what they print; the result goes to stdout, everything else to stderr.
import { AegisError, toAegisError } from "../errors.ts";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** True when a person is at the keyboard (prompts allowed). */
  interactive: boolean;
}

const encoder = new TextEncoder();

export const processIo: Io = {
  out: (text) => void Deno.stdout.writeSync(encoder.encode(text)),
  err: (text) => void Deno.stderr.writeSync(encoder.encode(text)),
  interactive: Deno.stdin.isTerminal() && Deno.stdout.isTerminal(),
};

/** Prints an error the way every command does, and returns its exit status. */
export function reportError(io: Io, error: unknown, json = false): number {
  const aegis = toAegisError(error);
  if (json) {
    io.out(JSON.stringify({ error: aegis.toJSON() }, null, 2) + "\n");
  } else {
    io.err(`✖ ${aegis.message}\n`);
    if (aegis.hint) io.err(`  → ${aegis.hint}\n`);
    if (aegis.code === "INTERNAL" && !(error instanceof AegisError) && error instanceof Error) {
      io.err(`${error.stack}\n`);
    }
  }
  return aegis.exitCode;
}
