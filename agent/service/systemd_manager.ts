// Drives the per-user systemd instance. The first systemctl call doubles as the probe: with no
// user bus (a root shell, a container, ssh without a session) it fails, and the person gets the
// commands to run from a login session instead of an error.
import { join } from "node:path/posix";
import { commandLine } from "./quote.ts";
import { exec, succeeded, unreachable } from "./runner.ts";
import { homeReadOnlyPaths } from "./sandbox.ts";
import { removeIfExists } from "./files.ts";
import { renderSystemdUnit, SYSTEMD_UNIT, systemdUnitPath } from "./systemd_unit.ts";
import type { ServiceManager } from "./types.ts";

const systemctl = (...args: string[]) => ["systemctl", "--user", ...args];
const DIAGNOSE = [
  `systemctl --user status ${SYSTEMD_UNIT}`,
  `journalctl --user -u ${SYSTEMD_UNIT}`,
];

export const systemdManager: ServiceManager = {
  kind: "systemd",
  unitName: SYSTEMD_UNIT,
  unitPath: systemdUnitPath,

  async render(ctx) {
    const readOnlyPaths = await homeReadOnlyPaths(ctx.command, ctx.home);
    return renderSystemdUnit({ command: ctx.command, home: ctx.home, readOnlyPaths });
  },

  async activate(ctx, { start, replaced }, log) {
    // `enable --now` leaves a running daemon on the old unit; a replaced unit needs a restart.
    const steps = [
      systemctl("daemon-reload"),
      ...(start && replaced
        ? [systemctl("enable", SYSTEMD_UNIT), systemctl("restart", SYSTEMD_UNIT)]
        : [systemctl("enable", ...(start ? ["--now"] : []), SYSTEMD_UNIT)]),
    ];
    const user = ctx.env.USER ?? ctx.env.LOGNAME;
    // Without lingering the user's manager stops the daemon at logout and waits for a login.
    const linger = ["loginctl", "enable-linger", ...(user ? [user] : [])];
    for (const [i, step] of steps.entries()) {
      if (succeeded(await exec(ctx, log, step))) continue;
      if (i === 0) return unreachable(ctx, [...steps, linger]);
      return {
        reachable: true,
        started: false,
        instructions: [...steps.slice(i).map((argv) => commandLine(ctx.os, argv)), ...DIAGNOSE],
      };
    }
    const lingered = succeeded(await exec(ctx, log, linger));
    const instructions = lingered ? [] : [`sudo ${commandLine(ctx.os, linger)}`];
    return { reachable: true, started: start, instructions };
  },

  async remove(ctx, log) {
    const unitPath = systemdUnitPath(ctx.home);
    const disabled = succeeded(await exec(ctx, log, systemctl("disable", "--now", SYSTEMD_UNIT)));
    await removeIfExists(unitPath);
    // `disable` removes this link; when systemctl could not run, it is left to us.
    await removeIfExists(join(unitPath, "..", "default.target.wants", SYSTEMD_UNIT));
    if (!disabled) {
      return unreachable(ctx, [systemctl("stop", SYSTEMD_UNIT), systemctl("daemon-reload")], false);
    }
    await exec(ctx, log, systemctl("daemon-reload"));
    return { reachable: true, started: false, instructions: [] };
  },

  async state(ctx) {
    const result = await ctx.run("systemctl", ["--user", "is-active", SYSTEMD_UNIT]);
    if (result === "not-found") return { active: "unknown", reachable: false };
    // is-active prints the state even when it exits non-zero; no state means no bus.
    const state = result.stdout.trim();
    if (state === "active" || state === "reloading") return { active: "active", reachable: true };
    if (state === "") return { active: "unknown", reachable: false };
    return { active: "inactive", reachable: true };
  },
};
