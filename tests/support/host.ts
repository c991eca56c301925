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

export interface EnrolledNewHost {
  host: Host;
  nodeId: string;
  /** What `aegis edge enroll` printed. */
  stdout: string;
}

/**
 * A new host enrolled non-interactively through `controller` (no service). `localTools` is
 * passed as --local-tools unless null (then the enroll default applies: nothing granted).
 */
export async function enrollNewHost(
  controller: {
    issueEnrollment(tenant: string, body?: Record<string, unknown>): Promise<{ token: string }>;
  },
  options: {
    tenant?: string;
    name?: string;
    localTools?: string | null;
    extra?: string[];
  } = {},
): Promise<EnrolledNewHost> {
  const host = await makeHost();
  const { token } = await controller.issueEnrollment(
    options.tenant ?? "team-a",
    options.name ? { name: options.name } : undefined,
  );
  const tools = options.localTools === null ? [] : ["--local-tools", options.localTools ?? "shell"];
  const out = await host.aegis([
    "edge",
    "enroll",
    token,
    "--non-interactive",
    "--no-service",
    ...tools,
    ...(options.extra ?? []),
  ]);
  if (out.code !== 0) {
    await host.cleanup();
    throw new Error(`enroll exited ${out.code}: ${out.stderr}`);
  }
  // Text output says "Attested as node n-…"; --output json has "node_id": "n-…".
  const nodeId = out.stdout.match(/(?:Attested as node |"node_id": ")(n-[0-9a-f]+)/)?.[1];
  if (!nodeId) throw new Error(`enroll printed no node id:\n${out.stdout}`);
  return { host, nodeId, stdout: out.stdout };
}
