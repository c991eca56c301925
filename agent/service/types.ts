// The shapes shared by the service managers. Everything a manager touches outside the process
// (the OS, the command runner, the environment) comes in through ServiceContext so tests can
// stand in a fake host.

export type ServiceOs = "linux" | "darwin" | "windows";
export type ManagerKind = "systemd" | "launchd" | "nssm";

/** What a command did, or "not-found" when its binary is not on PATH. */
export type CommandResult = { code: number; stdout: string; stderr: string } | "not-found";
export type CommandRunner = (cmd: string, args: string[]) => Promise<CommandResult>;

export interface ServiceContext {
  home: string;
  os: ServiceOs;
  /** How to run the aegis binary, without `edge run` (see agent/self.ts). */
  command: string[];
  run: CommandRunner;
  env: Record<string, string | undefined>;
  /** launchd's gui/<uid> domain; defaults to Deno.uid(). */
  uid?: number;
}

export interface RenderOptions {
  command: string[];
  home: string;
}

export interface ServiceReport {
  manager: ManagerKind;
  /** The unit or plist file; absent for nssm, which keeps its settings in the registry. */
  path?: string;
  action: "installed" | "replaced" | "present" | "removed" | "absent";
  started: boolean;
  /** Whether the manager answered; false means the person has to run `instructions`. */
  reachable: boolean;
  unitName: string;
  instructions: string[];
  /** Transcript: each command run to change the service, and a "! " line for each failure. */
  log: string[];
}

export interface ServiceStatus {
  manager: ManagerKind;
  path?: string;
  installed: boolean;
  active: "active" | "inactive" | "unknown";
  reachable: boolean;
}

/** What a manager made of running its commands. */
export interface Outcome {
  reachable: boolean;
  started: boolean;
  instructions: string[];
}

export interface ServiceManager {
  kind: ManagerKind;
  unitName: string;
  /** Where the unit file goes, or undefined when the manager keeps no file. */
  unitPath(home: string): string | undefined;
  /** The unit file's text; undefined when there is no file. */
  render(ctx: ServiceContext): Promise<string | undefined>;
  /** Queries only; `registered` is set by managers with no file to look at. */
  state(ctx: ServiceContext): Promise<ManagerState>;
  /** Registers (and maybe starts) the service once its file is written. */
  activate(
    ctx: ServiceContext,
    opts: { start: boolean; replaced: boolean },
    log: string[],
  ): Promise<Outcome>;
  /** Stops and unregisters the service and deletes its file. */
  remove(ctx: ServiceContext, log: string[]): Promise<Outcome>;
}

export interface ManagerState {
  active: ServiceStatus["active"];
  reachable: boolean;
  registered?: boolean;
}

export const SERVICE_NAME = "aegis-edge";
export const LAUNCHD_LABEL = "io.aegis.edge";
export const DAEMON_ARGS = ["edge", "run"];
