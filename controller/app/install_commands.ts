// The install one-liners an enrollment-token response carries next to the enroll command: fetch
// the controller's install script and let it enroll with the token. The token is a JWT
// (base64url and dots) and the URL is checked as a URL, so single quotes are enough in sh and
// PowerShell alike. The token goes to the script in its environment, not on a command line:
// `sh -s -- --token T` would show it to every local user (ps) while the install runs, and one of
// them could redeem it first; a process's environment is readable only by its own user.
import { AegisError } from "../../shared/errors.ts";

export interface InstallCommands {
  linux: string;
  macos: string;
  windows: string;
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const SAFE_URL = /^https?:\/\/[A-Za-z0-9.\-\[\]:]+(\/[A-Za-z0-9._~\/-]*)?$/;

/** The one-liners; with a token each goes on to `aegis edge enroll`, without one it installs. */
export function installCommands(bootstrapUrl: string, token?: string): InstallCommands {
  if ((token !== undefined && !JWT.test(token)) || !SAFE_URL.test(bootstrapUrl)) {
    // Both come from this controller; anything else would be unsafe to paste into a shell.
    throw new AegisError("INTERNAL", "cannot quote the install commands for this URL or token");
  }
  const unix = `curl -fsSL '${bootstrapUrl}/install.sh' | ` +
    (token === undefined ? "sh" : `AEGIS_TOKEN='${token}' sh`);
  return {
    linux: unix,
    macos: unix,
    windows: token === undefined
      ? `iwr -useb '${bootstrapUrl}/install.ps1' | iex`
      : `& ([scriptblock]::Create((iwr -useb '${bootstrapUrl}/install.ps1'))) -Token '${token}'`,
  };
}
