// The edge daemon's service: install, remove and inspect it under systemd, launchd or NSSM.
export { installService, managerFor, serviceStatus, uninstallService } from "./service.ts";
export type { InstallOptions } from "./service.ts";
export { renderSystemdUnit, SYSTEMD_UNIT, systemdUnitPath } from "./systemd_unit.ts";
export type { SystemdUnitOptions } from "./systemd_unit.ts";
export { launchdPlistPath, renderLaunchdPlist } from "./launchd_plist.ts";
export { nssmCommands } from "./nssm.ts";
export { realRunner } from "./runner.ts";
export { LAUNCHD_LABEL, SERVICE_NAME } from "./types.ts";
export type {
  CommandResult,
  CommandRunner,
  ManagerKind,
  RenderOptions,
  ServiceContext,
  ServiceManager,
  ServiceOs,
  ServiceReport,
  ServiceStatus,
} from "./types.ts";
