// Test support: a CommandRunner that records every call and answers from a script. The runner
// is the service module's boundary with the host, so this is a stand-in host, not a mock.
import type { CommandResult, CommandRunner, ServiceContext, ServiceOs } from "./types.ts";

export type Answer = (argv: string[]) => CommandResult | undefined;

export interface FakeHost {
  calls: string[][];
  run: CommandRunner;
}

/** Answers with the first script entry that has an opinion; success otherwise. */
export function fakeHost(...answers: Answer[]): FakeHost {
  const calls: string[][] = [];
  const run: CommandRunner = (cmd, args) => {
    const argv = [cmd, ...args];
    calls.push(argv);
    for (const answer of answers) {
      const result = answer(argv);
      if (result !== undefined) return Promise.resolve(result);
    }
    return Promise.resolve({ code: 0, stdout: "", stderr: "" });
  };
  return { calls, run };
}

export const notFound: Answer = () => "not-found";

/** Answers `result` to calls starting with `prefix`. */
export function when(prefix: string[], result: CommandResult): Answer {
  return (argv) => prefix.every((part, i) => argv[i] === part) ? result : undefined;
}

export function context(home: string, os: ServiceOs, run: CommandRunner): ServiceContext {
  const command = os === "windows" ? ["C:\\Aegis\\aegis.exe"] : ["/opt/aegis/bin/aegis"];
  return { home, os, command, run, env: { USER: "alice" }, uid: 501 };
}

export async function withTempHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir();
  try {
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}
