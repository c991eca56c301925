// An enrolled host running a fixture release the way an installed one runs: its binary under
// ~/.aegis/edge/versions/<version>/, `current` pointing at it, and the daemon started from
// current/aegis by a supervisor (supervisor.ts) that restarts it whenever it exits.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { enrollNewHost, type Host } from "../support/host.ts";
import { Background, eventually, type Output } from "../support/processes.ts";
import { type DaemonState, readDaemonState } from "../../agent/daemon/state.ts";

const SUPERVISOR = fileURLToPath(new URL("./supervisor.ts", import.meta.url));

export interface UpdateHost {
  host: Host;
  nodeId: string;
  dir: string;
  bin: string;
  env: Record<string, string>;
  supervisor: Background;
  /** Runs the installed `aegis` (current/aegis, or `binary`) with this host's environment. */
  aegis(args: string[], binary?: string): Promise<Output>;
  state(): Promise<DaemonState | undefined>;
  /** Where `current` points and which versions are installed. */
  installed(): Promise<{ current: string; versions: string[] }>;
  waitConnected(version: string, notPid?: number, timeoutMs?: number): Promise<DaemonState>;
  cleanup(): Promise<void>;
}

export async function setUpUpdateHost(
  controller: {
    issueEnrollment(tenant: string, body?: Record<string, unknown>): Promise<{ token: string }>;
  },
  launcher: string,
  version: string,
): Promise<UpdateHost> {
  const { host, nodeId } = await enrollNewHost(controller);
  const dir = join(host.home, ".aegis", "edge");
  await Deno.mkdir(join(dir, "versions", version), { recursive: true, mode: 0o700 });
  await Deno.copyFile(launcher, join(dir, "versions", version, "aegis"));
  await Deno.chmod(join(dir, "versions", version, "aegis"), 0o755);
  await Deno.symlink(join("versions", version), join(dir, "current"));
  const bin = join(dir, "current", "aegis");
  const env = {
    HOME: host.home,
    PATH: Deno.env.get("PATH") ?? "",
    XDG_RUNTIME_DIR: `${host.home}/no-runtime`,
  };
  const supervisor = new Background("", [], env, [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    SUPERVISOR,
    bin,
    "edge",
    "run",
    "--supervised",
  ]);
  const self: UpdateHost = {
    host,
    nodeId,
    dir,
    bin,
    env,
    supervisor,
    async aegis(args, binary = bin) {
      const out = await new Deno.Command(binary, {
        args,
        env: { NO_COLOR: "1", ...env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder();
      return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
    },
    state: () => readDaemonState(join(dir, "state.json")),
    async installed() {
      const versions: string[] = [];
      for await (const entry of Deno.readDir(join(dir, "versions"))) versions.push(entry.name);
      return { current: await Deno.readLink(join(dir, "current")), versions: versions.sort() };
    },
    async waitConnected(want, notPid, timeoutMs = 30_000) {
      try {
        return await eventually(
          async () => {
            const state = await self.state();
            return state?.status === "connected" && state.version === want &&
                state.pid !== notPid
              ? state
              : undefined;
          },
          `the ${want} daemon connected`,
          timeoutMs,
        );
      } catch (error) {
        const state = JSON.stringify(await self.state());
        throw new Error(`${(error as Error).message}\nstate: ${state}\n${supervisor.stderr}`);
      }
    },
    async cleanup() {
      await supervisor.stop();
      await host.cleanup();
    },
  };
  try {
    await self.waitConnected(version);
  } catch (error) {
    await self.cleanup();
    throw new Error(`${(error as Error).message}\n${supervisor.stderr}`);
  }
  return self;
}
