// The launchd agent for the logged-in user (~/Library/LaunchAgents). launchd neither creates
// log directories nor expands `~`, so every path here is absolute and made by installService.
import { join } from "node:path/posix";
import { AegisError } from "../../shared/errors.ts";
import { DAEMON_ARGS, LAUNCHD_LABEL, type RenderOptions } from "./types.ts";

export function launchdPlistPath(home: string): string {
  return join(home, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`);
}

export function launchdLogPaths(home: string): { stdout: string; stderr: string } {
  const logs = join(home, ".aegis", "edge", "logs");
  return { stdout: join(logs, "edge.out.log"), stderr: join(logs, "edge.err.log") };
}

export function renderLaunchdPlist(opts: RenderOptions): string {
  const logs = launchdLogPaths(opts.home);
  const str = (value: string) => `<string>${xmlEscape(value)}</string>`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" ' +
    '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "<dict>",
    "  <key>Label</key>",
    `  ${str(LAUNCHD_LABEL)}`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...[...opts.command, ...DAEMON_ARGS].map((arg) => `    ${str(arg)}`),
    "  </array>",
    "  <key>RunAtLoad</key>",
    "  <true/>",
    "  <key>KeepAlive</key>",
    "  <true/>",
    "  <key>StandardOutPath</key>",
    `  ${str(logs.stdout)}`,
    "  <key>StandardErrorPath</key>",
    `  ${str(logs.stderr)}`,
    "  <key>EnvironmentVariables</key>",
    "  <dict>",
    "    <key>HOME</key>",
    `    ${str(opts.home)}`,
    "  </dict>",
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}

/** Escapes text for an XML element. Characters XML 1.0 cannot carry at all are refused. */
export function xmlEscape(value: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/.test(value)) {
    throw new AegisError("INVALID_ARGUMENT", "the value cannot be stored in a plist", {
      details: { value: JSON.stringify(value) },
    });
  }
  return value.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}
