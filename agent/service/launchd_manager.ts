// Drives launchd in the user's GUI domain. `bootstrap` is the current interface; the legacy
// `load -w` still works where bootstrap refuses (older macOS, or a session without a GUI
// domain, e.g. over ssh), so it is the fallback rather than an error.
import { exec, succeeded, unreachable } from "./runner.ts";
import { removeIfExists } from "./files.ts";
import { launchdPlistPath, renderLaunchdPlist } from "./launchd_plist.ts";
import { LAUNCHD_LABEL, type ServiceContext, type ServiceManager } from "./types.ts";

function domain(ctx: ServiceContext): string {
  return `gui/${ctx.uid ?? Deno.uid() ?? 0}`;
}

export const launchdManager: ServiceManager = {
  kind: "launchd",
  unitName: LAUNCHD_LABEL,
  unitPath: launchdPlistPath,

  render(ctx) {
    return Promise.resolve(renderLaunchdPlist({ command: ctx.command, home: ctx.home }));
  },

  async activate(ctx, { start, replaced }, log) {
    const plist = launchdPlistPath(ctx.home);
    const target = `${domain(ctx)}/${LAUNCHD_LABEL}`;
    const bootstrap = ["launchctl", "bootstrap", domain(ctx), plist];
    const fallback = ["launchctl", "load", "-w", plist];
    // RunAtLoad means loading is starting; without start, only clear any "disabled" override
    // so the agent loads at the next login.
    if (!start) {
      const enabled = succeeded(await exec(ctx, log, ["launchctl", "enable", target]));
      return enabled
        ? { reachable: true, started: false, instructions: [] }
        : unreachable(ctx, [bootstrap]);
    }
    // A loaded job keeps its old definition until it is booted out.
    if (replaced && await exec(ctx, log, ["launchctl", "bootout", target]) === "not-found") {
      return unreachable(ctx, [bootstrap]);
    }
    const first = await exec(ctx, log, bootstrap);
    if (succeeded(first)) return { reachable: true, started: true, instructions: [] };
    if (first !== "not-found" && succeeded(await exec(ctx, log, fallback))) {
      return { reachable: true, started: true, instructions: [] };
    }
    return unreachable(ctx, [bootstrap]);
  },

  async remove(ctx, log) {
    const plist = launchdPlistPath(ctx.home);
    const bootout = ["launchctl", "bootout", `${domain(ctx)}/${LAUNCHD_LABEL}`];
    // bootout fails when the job is not loaded, which is the state we want anyway.
    const result = await exec(ctx, log, bootout);
    await removeIfExists(plist);
    if (result !== "not-found") return { reachable: true, started: false, instructions: [] };
    return unreachable(ctx, [bootout], false);
  },

  async state(ctx) {
    const result = await ctx.run("launchctl", ["print", `${domain(ctx)}/${LAUNCHD_LABEL}`]);
    if (result === "not-found") return { active: "unknown", reachable: false };
    if (result.code !== 0) return { active: "inactive", reachable: true };
    const running = /^\s*state = running\s*$/m.test(result.stdout);
    return { active: running ? "active" : "inactive", reachable: true };
  },
};
