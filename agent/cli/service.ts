// `aegis edge service install|reinstall|uninstall|status`: the daemon's service under systemd,
// launchd or NSSM. A manager that cannot be reached is not a failure: the file is written, the
// exit status is 0, and the person is told what to run (or to use `aegis edge run`). Only a
// file that cannot be written or removed fails, by throwing.
import type { Command } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";
import { type CliContext, outputOption } from "./context.ts";
import { homeDir } from "../state/paths.ts";
import {
  type CommandRunner,
  installService,
  realRunner,
  type ServiceContext,
  type ServiceReport,
  type ServiceStatus,
  serviceStatus,
  uninstallService,
} from "../service/mod.ts";
import { serviceContext } from "./service_step.ts";

/** The host as the commands see it; tests keep the real runner but cut it off from the bus. */
export interface ServiceDeps {
  env(): Record<string, string | undefined>;
  run: CommandRunner;
}

export const processServiceDeps: ServiceDeps = {
  env: () => Deno.env.toObject(),
  run: realRunner,
};

export function registerService(
  edge: Command,
  { io, setExit }: CliContext,
  deps: ServiceDeps = processServiceDeps,
): void {
  const ctx = (): ServiceContext => {
    const env = deps.env();
    return { ...serviceContext(homeDir(env), env), run: deps.run };
  };
  const service = edge.command("service")
    .description("install, remove or inspect the daemon's service (systemd, launchd, NSSM)");

  service.command("install")
    .description("install and start the service; keeps one that is already installed")
    .addOption(outputOption())
    .action(async (opts) => {
      const report = await installService(ctx(), { start: true, replace: false });
      print(io, opts.output, report, renderInstall);
      setExit(0);
    });

  service.command("reinstall")
    .description("rewrite the service file for this binary and restart the service")
    .addOption(outputOption())
    .action(async (opts) => {
      const report = await installService(ctx(), { start: true, replace: true });
      print(io, opts.output, report, renderInstall);
      setExit(0);
    });

  service.command("uninstall")
    .description("stop the service and remove it (state and secrets are kept)")
    .addOption(outputOption())
    .action(async (opts) => {
      const report = await uninstallService(ctx());
      print(io, opts.output, report, renderUninstall);
      setExit(0);
    });

  service.command("status")
    .description("whether the service is installed and running")
    .addOption(outputOption())
    .action(async (opts) => {
      const status = await serviceStatus(ctx());
      print(io, opts.output, status, renderStatus);
      setExit(0);
    });
}

function print<T>(io: Io, output: string, value: T, render: (value: T) => string[]): void {
  io.out(
    output === "json" ? JSON.stringify(value, null, 2) + "\n" : render(value).join("\n") + "\n",
  );
}

/** What the file is called in messages: its path, or the service name when there is none. */
const target = (r: { path?: string; unitName: string }) => r.path ?? `service ${r.unitName}`;

export function renderInstall(r: ServiceReport): string[] {
  const lines: string[] = [];
  if (r.action === "present") {
    lines.push(
      `✔ Already installed: ${target(r)}`,
      "  `aegis edge service reinstall` rewrites it for this binary and restarts it.",
    );
    return lines;
  }
  lines.push(`✔ ${r.action === "replaced" ? "Replaced" : "Wrote"} ${target(r)}`);
  if (r.started) lines.push(`✔ ${r.action === "replaced" ? "Restarted" : "Started"} ${r.unitName}`);
  if (!r.reachable) {
    lines.push(`! ${r.manager} is not reachable from here, so the service was not started. Run:`);
  } else if (r.instructions.length > 0) {
    lines.push(`! ${r.manager} needs a hand. Run:`);
  }
  return [...lines, ...r.instructions.map((line) => `    ${line}`)];
}

export function renderUninstall(r: ServiceReport): string[] {
  if (r.action === "absent") return [`✔ Not installed; nothing to remove (${target(r)})`];
  const lines = [r.path ? `✔ Removed ${r.path}` : `✔ Removed service ${r.unitName}`];
  if (r.reachable) lines.push(`✔ Stopped and disabled ${r.unitName}`);
  else {
    lines.push(
      `! ${r.manager} is not reachable from here; if the daemon is still running, stop it:`,
    );
  }
  return [...lines, ...r.instructions.map((line) => `    ${line}`)];
}

export function renderStatus(s: ServiceStatus): string[] {
  const rows: [string, string][] = [
    ["manager", s.manager],
    ...(s.path ? [["file", s.path] as [string, string]] : []),
    ["installed", s.installed ? "yes" : "no"],
    ["active", s.active],
    ["reachable", s.reachable ? "yes" : "no"],
  ];
  const lines = rows.map(([k, v]) => `${(k + ":").padEnd(11)}${v}`);
  if (!s.reachable) {
    lines.push(
      `! ${s.manager} could not be asked from here, so whether it runs is unknown.`,
    );
  }
  if (!s.installed) {
    lines.push("  Install it with `aegis edge service install`, or run `aegis edge run`.");
  }
  return lines;
}
