// NSSM (the Non-Sucking Service Manager) wraps the daemon as a Windows service. Its settings
// live in the registry, so there is no unit file: the service is these commands.
import { win32 } from "node:path";
import { DAEMON_ARGS, type RenderOptions, SERVICE_NAME } from "./types.ts";
import { windowsArg } from "./quote.ts";

export function nssmLogPaths(home: string): { stdout: string; stderr: string } {
  const logs = win32.join(home, ".aegis", "edge", "logs");
  return { stdout: win32.join(logs, "edge.out.log"), stderr: win32.join(logs, "edge.err.log") };
}

/** The argv lists that register the service and start it, in order. */
export function nssmCommands(opts: RenderOptions): string[][] {
  const [program, ...args] = opts.command;
  const logs = nssmLogPaths(opts.home);
  const set = (key: string, ...values: string[]) => ["nssm", "set", SERVICE_NAME, key, ...values];
  return [
    // nssm joins its trailing arguments with bare spaces, losing any quoting; so the parameters
    // go as one argument already quoted the way the C runtime will split them again.
    // --supervised: NSSM restarts the daemon when it exits (its default AppExit action), which a
    // fleet upgrade relies on, and unlike systemd and launchd it leaves no mark to detect.
    [
      "nssm",
      "install",
      SERVICE_NAME,
      program,
      [...args, ...DAEMON_ARGS, "--supervised"].map(windowsArg).join(" "),
    ],
    set("AppDirectory", win32.join(opts.home, ".aegis", "edge")),
    set("Start", "SERVICE_AUTO_START"),
    set("AppStdout", logs.stdout),
    set("AppStderr", logs.stderr),
    // The service runs as LocalSystem; these point it at this user's state directory.
    set("AppEnvironmentExtra", `HOME=${opts.home}`, `USERPROFILE=${opts.home}`),
    set("DisplayName", "AEGIS Edge agent"),
    set("Description", "Runs `aegis edge run`: the AEGIS Edge agent daemon."),
    ["nssm", "start", SERVICE_NAME],
  ];
}

export function nssmRemoveCommands(): string[][] {
  return [["nssm", "stop", SERVICE_NAME], ["nssm", "remove", SERVICE_NAME, "confirm"]];
}

/**
 * nssm 2.24 writes UTF-16 to pipes, which arrives decoded as UTF-8: drop the NULs and the
 * byte-order mark (now U+FFFD) so "SERVICE_RUNNING" reads as itself.
 */
export function nssmText(output: string): string {
  return output.replace(/[\0\ufeff\ufffd]/g, "").trim();
}
