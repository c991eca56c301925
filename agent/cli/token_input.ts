// Secrets on the command line leak through `ps` and shell history, so a token may also come
// from a file or from standard input (`--token-file -`).
import { AegisError } from "../../shared/errors.ts";

export async function readToken(
  arg: string | undefined,
  file: string | undefined,
): Promise<string> {
  if (arg && file) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      "pass the token as an argument or with --token-file, not both",
    );
  }
  if (arg) return arg.trim();
  if (!file) {
    throw new AegisError("INVALID_ARGUMENT", "no enrollment token given", {
      hint: "Run `aegis edge enroll <token>`, or `--token-file FILE` (`-` reads standard input).",
    });
  }
  const text = file === "-"
    ? await new Response(Deno.stdin.readable).text()
    : await Deno.readTextFile(file).catch((e) => {
      throw new AegisError(
        "INVALID_ARGUMENT",
        `cannot read --token-file ${file}: ${(e as Error).message}`,
      );
    });
  const token = text.trim();
  if (!token) throw new AegisError("INVALID_ARGUMENT", `--token-file ${file} is empty`);
  return token;
}
