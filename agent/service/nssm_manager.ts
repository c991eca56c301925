// Drives NSSM. Registering a Windows service needs an elevated prompt; when nssm is missing or
// refuses, the person gets the exact commands to run from one.
import { exec, succeeded, unreachable } from "./runner.ts";
import { nssmCommands, nssmRemoveCommands, nssmText } from "./nssm.ts";
import { SERVICE_NAME, type ServiceManager } from "./types.ts";

export const nssmManager: ServiceManager = {
  kind: "nssm",
  unitName: SERVICE_NAME,
  unitPath: () => undefined,
  render: () => Promise.resolve(undefined),

  async activate(ctx, { start, replaced }, log) {
    const all = nssmCommands({ command: ctx.command, home: ctx.home });
    const steps = start ? all : all.slice(0, -1);
    // `nssm install` refuses a name that exists, so a replaced service goes first.
    const removal = replaced ? nssmRemoveCommands() : [];
    for (const step of removal) {
      if (await exec(ctx, log, step) === "not-found") {
        return unreachable(ctx, [...removal, ...steps]);
      }
    }
    for (const [i, step] of steps.entries()) {
      if (succeeded(await exec(ctx, log, step))) continue;
      return unreachable(ctx, [...(i === 0 ? removal : []), ...steps.slice(i)]);
    }
    return { reachable: true, started: start, instructions: [] };
  },

  async remove(ctx, log) {
    const [stop, remove] = nssmRemoveCommands();
    // stop fails on a stopped service; only the removal has to succeed.
    if (await exec(ctx, log, stop) === "not-found") return unreachable(ctx, [stop, remove], false);
    if (succeeded(await exec(ctx, log, remove))) {
      return { reachable: true, started: false, instructions: [] };
    }
    return unreachable(ctx, [remove], false);
  },

  async state(ctx) {
    const result = await ctx.run("nssm", ["status", SERVICE_NAME]);
    if (result === "not-found") return { active: "unknown", reachable: false, registered: false };
    if (result.code !== 0) return { active: "inactive", reachable: true, registered: false };
    const running = nssmText(result.stdout) === "SERVICE_RUNNING";
    return { active: running ? "active" : "inactive", reachable: true, registered: true };
  },
};
