// Install, remove and inspect the daemon's service, whichever manager the OS has. Nothing here
// fails because a manager is unreachable: the file is written and the report says what to run.
import { edgePaths } from "../state/paths.ts";
import { fileExists, prepareStateDirs, writeUnitFile } from "./files.ts";
import { launchdManager } from "./launchd_manager.ts";
import { nssmManager } from "./nssm_manager.ts";
import { systemdManager } from "./systemd_manager.ts";
import type {
  ManagerState,
  ServiceContext,
  ServiceManager,
  ServiceOs,
  ServiceReport,
  ServiceStatus,
} from "./types.ts";

const MANAGERS: Record<ServiceOs, ServiceManager> = {
  linux: systemdManager,
  darwin: launchdManager,
  windows: nssmManager,
};

export function managerFor(os: ServiceOs): ServiceManager {
  return MANAGERS[os];
}

export interface InstallOptions {
  start: boolean;
  replace: boolean;
}

export async function installService(
  ctx: ServiceContext,
  opts: InstallOptions,
): Promise<ServiceReport> {
  const manager = managerFor(ctx.os);
  const path = manager.unitPath(ctx.home);
  const log: string[] = [];
  const base = { manager: manager.kind, path, unitName: manager.unitName, log };
  const { present, state } = await presence(manager, ctx);
  if (present && !opts.replace) {
    const { reachable } = state ?? await manager.state(ctx);
    return { ...base, action: "present", started: false, reachable, instructions: [] };
  }
  const text = await manager.render(ctx);
  await prepareStateDirs(edgePaths(ctx.home).dir);
  if (path && text !== undefined) await writeUnitFile(path, text);
  const outcome = await manager.activate(ctx, { start: opts.start, replaced: present }, log);
  return { ...base, action: present ? "replaced" : "installed", ...outcome };
}

export async function uninstallService(ctx: ServiceContext): Promise<ServiceReport> {
  const manager = managerFor(ctx.os);
  const path = manager.unitPath(ctx.home);
  const log: string[] = [];
  const base = { manager: manager.kind, path, unitName: manager.unitName, log, started: false };
  const { present, state } = await presence(manager, ctx);
  if (!present) {
    const { reachable } = state ?? await manager.state(ctx);
    return { ...base, action: "absent", reachable, instructions: [] };
  }
  const outcome = await manager.remove(ctx, log);
  return { ...base, action: "removed", ...outcome };
}

export async function serviceStatus(ctx: ServiceContext): Promise<ServiceStatus> {
  const manager = managerFor(ctx.os);
  const path = manager.unitPath(ctx.home);
  const { active, reachable, registered } = await manager.state(ctx);
  const installed = path ? await fileExists(path) : registered === true;
  return { manager: manager.kind, path, installed, active, reachable };
}

/** The file when the manager keeps one; otherwise the manager's own word (kept for reuse). */
async function presence(
  manager: ServiceManager,
  ctx: ServiceContext,
): Promise<{ present: boolean; state?: ManagerState }> {
  const path = manager.unitPath(ctx.home);
  if (path) return { present: await fileExists(path) };
  const state = await manager.state(ctx);
  return { present: state.registered === true, state };
}
