// A simulated edge host: its own HOME, and the real `aegis` binary run against it.
import { AGENT_MAIN, Background, type Output, runDeno } from "./processes.ts";

export interface Host {
  home: string;
  aegis(args: string[], stdin?: string): Promise<Output>;
  startDaemon(): Background;
  cleanup(): Promise<void>;
}

export async function makeHost(): Promise<Host> {
  const home = await Deno.makeTempDir({ prefix: "aegis-host-" });
  // No user bus in tests: the service is written but cannot be started, as on a bare container.
  const env = {
    HOME: home,
    PATH: Deno.env.get("PATH") ?? "",
    XDG_RUNTIME_DIR: `${home}/no-runtime`,
  };
  const daemons: Background[] = [];
  return {
    home,
    aegis: (args, stdin) => runDeno(AGENT_MAIN, args, env, stdin),
    startDaemon() {
      const daemon = new Background(AGENT_MAIN, ["edge", "run"], env);
      daemons.push(daemon);
      return daemon;
    },
    async cleanup() {
      await Promise.all(daemons.map((d) => d.stop()));
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}
