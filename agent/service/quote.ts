// Quoting for command lines shown to people (log and instructions) and for the one place a
// command line is stored as a single string (NSSM's AppParameters).
import type { ServiceOs } from "./types.ts";

/** One argument for a POSIX shell: bare when safe, otherwise single-quoted. */
export function shellArg(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * One argument as the Microsoft C runtime (CommandLineToArgvW) splits it: quotes only when
 * needed, and backslashes doubled only where they precede a quote, so `C:\dir\` survives.
 */
export function windowsArg(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  let out = '"';
  let slashes = 0;
  for (const ch of arg) {
    if (ch === "\\") {
      slashes++;
      continue;
    }
    out += "\\".repeat(ch === '"' ? slashes * 2 + 1 : slashes) + ch;
    slashes = 0;
  }
  return out + "\\".repeat(slashes * 2) + '"';
}

export function commandLine(os: ServiceOs, argv: string[]): string {
  return argv.map(os === "windows" ? windowsArg : shellArg).join(" ");
}
