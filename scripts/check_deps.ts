// Dependency direction, checked rather than hoped for:
//   - shared/ imports neither agent/ nor controller/;
//   - the `aegis` binary (agent/main.ts) reaches no controller/ module and no database driver;
//   - controller/ does not import agent/.
// It reads the real module graph from `deno info --json`.
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));

interface Graph {
  modules: {
    specifier: string;
    dependencies?: { specifier: string; code?: { specifier: string } }[];
  }[];
}

async function graphOf(entry: string): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
    stdout: "piped",
  })
    .output();
  if (!out.success) throw new Error(`deno info ${entry} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const local = (specifier: string) =>
  specifier.startsWith("file://") ? fileURLToPath(specifier).slice(root.length) : specifier;
const problems: string[] = [];

for (
  const [entry, forbidden] of [
    ["agent/main.ts", [/^controller\//, /postgres@|pglite@/]],
    ["controller/main.ts", [/^agent\//]],
  ] as const
) {
  const graph = await graphOf(entry);
  for (const module of graph.modules) {
    const name = local(module.specifier);
    if (forbidden.some((re) => re.test(name))) problems.push(`${entry} reaches ${name}`);
    if (name.startsWith("shared/")) {
      for (const dep of module.dependencies ?? []) {
        const target = local(dep.code?.specifier ?? dep.specifier);
        if (/^(agent|controller)\//.test(target)) problems.push(`${name} imports ${target}`);
      }
    }
  }
}

if (problems.length) {
  console.error(
    "dependency direction violated:\n" + [...new Set(problems)].map((p) => `  ${p}`).join("\n"),
  );
  Deno.exit(1);
}
console.log("dependency direction ok");
