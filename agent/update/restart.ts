// How the daemon gets restarted onto the switched binary, decided before anything changes so an
// update that could not take effect is refused up front:
// - service: the service manager is reachable and the service is installed. It is reinstalled
//   to run the managed path (the first update moves it off wherever install.sh put the binary)
//   and restarted by the manager.
// - signal: no manager here, but the running daemon said in state.json that something restarts
//   it when it exits (systemd, launchd, a container's restart policy, `edge run --supervised`).
//   SIGTERM stops it cleanly and its supervisor starts current/aegis again.
// - none: no daemon runs; the switch alone is the update, the next start runs the new binary.
import { readFile } from "node:fs/promises";
import { AegisError } from "../../shared/errors.ts";
import { installService, realRunner, serviceStatus } from "../service/mod.ts";
import type { ServiceContext, ServiceOs } from "../service/mod.ts";
import type { EdgePaths } from "../state/paths.ts";
import { readDaemonState } from "../daemon/state.ts";
import type { UpdateLayout } from "./layout.ts";

export type RestartPlan =
  | { kind: "service"; ctx: ServiceContext; daemonPid?: number }
  | { kind: "signal"; pid: number }
  | { kind: "none" };

export async function planRestart(
  paths: EdgePaths,
  layout: UpdateLayout,
  host: Pick<ServiceContext, "os" | "run" | "env"> = {
    os: Deno.build.os as ServiceOs,
    run: realRunner,
    env: Deno.env.toObject(),
  },
): Promise<RestartPlan> {
  const ctx: ServiceContext = { ...host, home: paths.home, command: [layout.bin] };
  const daemon = await runningDaemon(paths);
  const status = await serviceStatus(ctx).catch(() => undefined);
  if (status?.installed && status.reachable) {
    return { kind: "service", ctx, daemonPid: daemon?.pid };
  }
  if (!daemon) return { kind: "none" };
  if (daemon.supervised) return { kind: "signal", pid: daemon.pid };
  throw new AegisError(
    "UPDATE_FAILED",
    `the daemon (pid ${daemon.pid}) runs in the foreground with nothing to restart it, and no service manager answers`,
    {
      hint:
        "Run it as a service (`aegis edge service install`), or under a supervisor with `aegis edge run --supervised`, then update again.",
    },
  );
}

export async function restart(plan: RestartPlan, log: (line: string) => void): Promise<void> {
  if (plan.kind === "none") return;
  if (plan.kind === "signal") {
    try {
      Deno.kill(plan.pid, "SIGTERM");
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    // Logged once the signal is sent, so whoever reads this line knows the restart is under way.
    log(`stopping the daemon (pid ${plan.pid}); its supervisor starts the new version`);
    return;
  }
  const report = await installService(plan.ctx, { start: true, replace: true });
  for (const line of report.log) log(line);
  if (!report.started) {
    throw new AegisError("UPDATE_FAILED", `the ${report.manager} service did not restart`, {
      hint: report.instructions.join("\n"),
    });
  }
}

/** The daemon state.json names, when that process still runs and is an aegis daemon. */
export async function runningDaemon(
  paths: EdgePaths,
): Promise<{ pid: number; supervised: boolean; version?: string } | undefined> {
  const state = await readDaemonState(paths.state);
  if (!state?.pid || state.status === "refused" || !await isDaemon(state.pid)) return undefined;
  return { pid: state.pid, supervised: state.supervised === true, version: state.version };
}

/**
 * Whether pid is alive and, where /proc says, runs `edge run`: state.json can outlive its daemon
 * and the pid be reused, and signalling a stranger would be worse than not restarting.
 */
async function isDaemon(pid: number): Promise<boolean> {
  if (Deno.build.os === "linux") {
    try {
      const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
      return argv.some((arg, i) => arg === "edge" && argv[i + 1] === "run");
    } catch {
      return false;
    }
  }
  if (Deno.build.os === "windows") return false;
  // Elsewhere (macOS) signal 0 is not offered by Deno; SIGCONT is harmless to a running daemon.
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}
