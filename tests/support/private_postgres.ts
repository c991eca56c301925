// A PostgreSQL server of the test's own (initdb into a temp dir, on a free loopback port) for
// tests that restart or stop the server under running processes: the shared AEGIS_TEST_PG_DSN
// server must never be touched that way, other tests use it. Set up as scripts/ci_postgres.sh
// does: binaries from /usr/lib/postgresql/*/bin (newest major), trust auth on loopback only, and
// run as the `postgres` OS user when we are root (PostgreSQL refuses to run as root).
import { freePort } from "./processes.ts";

export interface PrivatePostgres {
  /** Admin DSN (superuser `postgres`, database `postgres`). */
  dsn: string;
  port: number;
  dir: string;
  /** `pg_ctl restart -m <mode>`: every connection is cut, the server is back when it resolves. */
  restart(mode?: "smart" | "fast" | "immediate"): Promise<void>;
  stop(mode?: "smart" | "fast" | "immediate"): Promise<void>;
  start(): Promise<void>;
  /** The server's log so far (for failure messages). */
  log(): Promise<string>;
  /** Stops the server (immediate) and removes its directory. */
  cleanup(): Promise<void>;
}

/** The newest installed PostgreSQL's bin dir, or undefined when none is installed. */
export function postgresBinDir(): string | undefined {
  let versions: string[];
  try {
    versions = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name);
  } catch {
    return undefined;
  }
  const numeric = (v: string) => v.split(".").map(Number);
  versions.sort((a, b) => {
    const [x, y] = [numeric(a), numeric(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    }
    return 0;
  });
  for (const version of versions.reverse()) {
    const bin = `/usr/lib/postgresql/${version}/bin`;
    try {
      if (Deno.statSync(`${bin}/pg_ctl`).isFile && Deno.statSync(`${bin}/initdb`).isFile) {
        return bin;
      }
    } catch { /* not this one */ }
  }
  return undefined;
}

/** Why a private server cannot be started here, or undefined when it can. */
export function privatePostgresUnavailable(): string | undefined {
  if (Deno.build.os === "windows") return "no private PostgreSQL on Windows";
  if (!postgresBinDir()) {
    return "no PostgreSQL binaries under /usr/lib/postgresql/*/bin (install the postgresql package)";
  }
  if (Deno.uid() === 0 && !userExists("postgres")) {
    return "running as root without a `postgres` OS user to run the server as";
  }
  return undefined;
}

function userExists(name: string): boolean {
  try {
    return Deno.readTextFileSync("/etc/passwd").split("\n").some((l) => l.startsWith(`${name}:`));
  } catch {
    return false;
  }
}

async function run(program: string, args: string[]): Promise<void> {
  const asRoot = Deno.uid() === 0;
  const command = asRoot
    ? new Deno.Command("runuser", { args: ["-u", "postgres", "--", program, ...args] })
    : new Deno.Command(program, { args });
  const out = await command.output();
  if (!out.success) {
    const decoder = new TextDecoder();
    throw new Error(
      `${program} ${args.join(" ")} exited ${out.code}\n${decoder.decode(out.stdout)}` +
        decoder.decode(out.stderr),
    );
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const why = privatePostgresUnavailable();
  if (why) throw new Error(why);
  const bin = postgresBinDir()!;
  const dir = await Deno.makeTempDir({ prefix: "aegis-private-pg-" });
  if (Deno.uid() === 0) {
    const id = await new Deno.Command("id", { args: ["-u", "postgres"] }).output();
    const gid = await new Deno.Command("id", { args: ["-g", "postgres"] }).output();
    const decoder = new TextDecoder();
    await Deno.chown(
      dir,
      Number(decoder.decode(id.stdout).trim()),
      Number(decoder.decode(gid.stdout).trim()),
    );
  }
  await Deno.chmod(dir, 0o700);
  const data = `${dir}/data`;
  const logFile = `${dir}/server.log`;
  const port = freePort();
  await run(`${bin}/initdb`, [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-locale",
    "--no-sync",
  ]);
  // Loopback only, socket in our own dir; durability off: nothing here outlives the test.
  const options = [
    "-c listen_addresses=127.0.0.1",
    `-p ${port}`,
    `-k ${dir}`,
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
  ].join(" ");
  const ctl = (...args: string[]) =>
    run(`${bin}/pg_ctl`, ["-D", data, "-l", logFile, "-w", "-t", "60", ...args]);
  await ctl("-o", options, "start");
  let running = true;
  return {
    dsn: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    async restart(mode = "fast") {
      await ctl("-m", mode, "-o", options, "restart");
      running = true;
    },
    async stop(mode = "fast") {
      await ctl("-m", mode, "stop");
      running = false;
    },
    async start() {
      await ctl("-o", options, "start");
      running = true;
    },
    log: () => Deno.readTextFile(logFile).catch(() => ""),
    async cleanup() {
      if (running) await ctl("-m", "immediate", "stop").catch(() => {});
      running = false;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
