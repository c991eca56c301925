// The systemd user unit. Quoting follows systemd.syntax(7) and systemd.service(5): values are
// double-quoted when they hold anything but plain path characters, `%` is doubled everywhere
// (specifiers) and `$` is doubled in ExecStart= (variable expansion).
import { join } from "node:path/posix";
import { AegisError } from "../../shared/errors.ts";
import { DAEMON_ARGS, type RenderOptions, SERVICE_NAME } from "./types.ts";
import { isUnder } from "./sandbox.ts";

export const SYSTEMD_UNIT = `${SERVICE_NAME}.service`;

export function systemdUnitPath(home: string): string {
  return join(home, ".config", "systemd", "user", SYSTEMD_UNIT);
}

export interface SystemdUnitOptions extends RenderOptions {
  /** Paths under home the daemon reads (see sandbox.ts); defaults to the binary if it is there. */
  readOnlyPaths?: string[];
}

export function renderSystemdUnit(opts: SystemdUnitOptions): string {
  const { command, home } = opts;
  if (!command[0]?.startsWith("/") || !home.startsWith("/")) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      "a systemd unit needs an absolute executable path and home directory",
      { details: { executable: command[0] ?? "", home } },
    );
  }
  const stateDir = join(home, ".aegis", "edge");
  const readOnly = opts.readOnlyPaths ?? command.slice(0, 1).filter((p) => isUnder(p, home));
  const exec = [...command, ...DAEMON_ARGS].map((arg) => quote(arg, "exec")).join(" ");
  return [
    "# Written by `aegis edge service install`; reinstall it rather than editing it.",
    "[Unit]",
    "Description=AEGIS Edge agent",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    `ExecStart=${exec}`,
    // WorkingDirectory= takes the rest of the line as the path: no quotes, specifiers only.
    `WorkingDirectory=${quote(stateDir, "bare")}`,
    "Restart=always",
    "RestartSec=5",
    // 77: the controller refused this node for good (revoked, token refused); restarting
    // cannot help, and a loop would only hide the message in the journal.
    "RestartPreventExitStatus=77",
    `Environment=${quote(`HOME=${home}`)}`,
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "ProtectSystem=strict",
    // ProtectHome=true cannot be used: it leaves nothing under /home to re-open, so a
    // ReadWritePaths= below it makes every start fail with 226/NAMESPACE (systemd issue 7153).
    // "tmpfs" hides home just as completely but lets the Bind*Paths= below put back the state
    // directory (writable, even under ProtectSystem=strict) and what the daemon runs from.
    "# Home is hidden; only the paths bound below are visible inside the service.",
    "ProtectHome=tmpfs",
    `BindPaths=${quote(stateDir)}`,
    // "-": a missing path fails exec with a clear error instead of an opaque 226/NAMESPACE.
    ...readOnly.map((path) => `BindReadOnlyPaths=${quote(`-${path}`)}`),
    "",
    "[Install]",
    "WantedBy=default.target",
    "",
  ].join("\n");
}

function quote(value: string, kind: "exec" | "bare" | "word" = "word"): string {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value)) {
    throw new AegisError("INVALID_ARGUMENT", "control characters cannot go into a systemd unit", {
      details: { value: JSON.stringify(value) },
    });
  }
  let escaped = value.replaceAll("%", "%%");
  if (kind === "bare") return escaped;
  if (kind === "exec") escaped = escaped.replaceAll("$", () => "$$");
  // ":" separates source from target in Bind*Paths=, so it is quoted too.
  if (/^[A-Za-z0-9_@+=,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}
