// Runs install.sh the way a host does, `<curl|wget> URL/install.sh | sh -s -- ARGS`, under a
// fresh HOME whose PATH holds only the tools a case allows; as `nobody` when the tests run as
// root, so the default (non-root) install directory is the one exercised.
import { join } from "node:path";

const homes: string[] = [];

/** Removes every HOME install() made. */
export async function removeHomes(): Promise<void> {
  for (const home of homes.splice(0)) await Deno.remove(home, { recursive: true }).catch(() => {});
}

export const BASE_TOOLS = [
  "sh",
  "tr",
  "sed",
  "grep",
  "dd",
  "od",
  "cut",
  "wc",
  "mktemp",
  "cp",
  "chmod",
  "mv",
  "mkdir",
  "rm",
  "uname",
  "id",
  "head",
  "sha256sum",
  "basename",
  "cat",
];

export interface Run {
  code: number;
  stderr: string;
  home: string;
  installDir: string;
  ms: number;
  /** What is left in the install dir and in TMPDIR. */
  installed: string[];
  leftovers: string[];
}

/** `<downloader> URL/install.sh | sh -s -- ARGS` with PATH = only `tools`. */
export async function install(
  url: string,
  options: {
    tools: string[];
    downloader?: "curl" | "wget";
    args?: string[];
    env?: Record<string, string>;
    /** Extra options for the downloader that fetches install.sh (e.g. `--cacert ca.pem`). */
    fetchFlags?: string;
  },
): Promise<Run> {
  const home = await Deno.makeTempDir({ prefix: "aegis-home-" });
  homes.push(home);
  const tmp = join(home, "tmp");
  const bin = join(home, "toolbin");
  await Deno.mkdir(tmp);
  await Deno.mkdir(bin);
  for (const tool of [...BASE_TOOLS, ...options.tools]) {
    await Deno.symlink(await which(tool), join(bin, tool));
  }
  const flags = options.fetchFlags ?? "";
  const fetch = options.downloader === "wget"
    ? `wget -qO- ${flags} "${url}/install.sh"`
    : `curl -fsSL ${flags} "${url}/install.sh"`;
  // As root the script would install into /usr/local/bin; the default user case runs as nobody.
  const user = Deno.uid() === 0 ? await unprivileged(home) : { prefix: [], env: {} };
  const started = performance.now();
  const [program, ...args] = [
    ...user.prefix,
    "/bin/sh",
    "-c",
    `${fetch} | sh -s -- "$@"`,
    "install",
    ...(options.args ?? []),
  ];
  const out = await new Deno.Command(program, {
    args,
    clearEnv: true,
    env: { HOME: home, PATH: bin, TMPDIR: tmp, ...user.env, ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - started;
  const installDir = join(home, ".local", "bin");
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout),
    home,
    installDir,
    ms,
    installed: await list(installDir),
    leftovers: await list(tmp),
  };
}

const NOBODY = 65534;
let sharedDenoDir: string | undefined;

/**
 * Runs as `nobody`: the HOME is handed over, and the fixture's `deno run` gets a module cache
 * it may write (one for the whole file, so only the first install compiles the CLI).
 */
async function unprivileged(home: string) {
  if (!sharedDenoDir) {
    const dir = await Deno.makeTempDir({ prefix: "aegis-installer-deno-" });
    await Deno.chown(dir, NOBODY, NOBODY);
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    sharedDenoDir = dir;
  }
  await chownTree(home, NOBODY);
  return {
    prefix: ["/usr/bin/setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"],
    env: { DENO_DIR: sharedDenoDir },
  };
}

async function chownTree(path: string, id: number): Promise<void> {
  await Deno.chown(path, id, id);
  for await (const entry of Deno.readDir(path)) {
    if (entry.isDirectory) await chownTree(join(path, entry.name), id);
  }
}

async function which(tool: string): Promise<string> {
  for (const dir of ["/usr/local/bin", "/usr/bin", "/bin"]) {
    const path = join(dir, tool);
    if (await Deno.stat(path).then(() => true, () => false)) return path;
  }
  throw new Error(`${tool} is not installed`);
}

async function list(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch { /* absent */ }
  return names.sort();
}

export async function versionOf(binary: string): Promise<string> {
  const out = await new Deno.Command(binary, { args: ["--version"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}
