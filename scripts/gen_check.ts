// Fails when shared/gen is not what `deno task gen` makes from proto/ (CI runs it).
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const run = async (cmd: string, args: string[]) => {
  const out = await new Deno.Command(cmd, { args, cwd: root, stdout: "piped", stderr: "piped" })
    .output();
  return {
    ok: out.success,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
};

const gen = await run(Deno.execPath(), ["task", "gen"]);
if (!gen.ok) {
  console.error(gen.text);
  Deno.exit(1);
}
const diff = await run("git", ["status", "--porcelain", "--", "shared/gen"]);
if (diff.text.trim()) {
  console.error(
    `shared/gen is out of date with proto/ — run \`deno task gen\` and commit:\n${diff.text}`,
  );
  Deno.exit(1);
}
console.log("shared/gen matches proto/");
