// The unauthenticated bootstrap endpoints (seed 004): the install scripts, the Homebrew formula
// and the release files hosts install from. Everything served here is public and is checked by
// the installer against the release's signature, so nothing here needs a credential.
import type { Context, Hono } from "hono";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import { FORMULA_FILE, renderFormula } from "../../shared/release/homebrew.ts";
import { ReleaseCatalog, releaseFilePath } from "../app/releases.ts";
import { installCommands } from "../app/install_commands.ts";
import {
  type InstallScript,
  installScriptValues,
  renderInstallScript,
} from "../app/install_scripts.ts";

export interface BootstrapDeps {
  catalog: ReleaseCatalog;
  /** The URL hosts reach this controller's bootstrap endpoints at. */
  publicUrl: string;
  /** bootstrap.ca_file's certificates, or empty. */
  caPem: string;
  log: (message: string) => void;
}

const TEXT = "text/plain; charset=utf-8";

export function bootstrapRoutes(
  // deno-lint-ignore no-explicit-any
  app: Hono<any>,
  deps: BootstrapDeps,
  options: { console?: boolean } = {},
): void {
  app.get("/install.sh", (c) => installScript(c, deps, "sh"));
  app.get("/install.ps1", (c) => installScript(c, deps, "ps1"));
  app.get("/install", (c) => c.body(oneLiners(deps.publicUrl), 200, { "content-type": TEXT }));
  // `curl URL | sh` and `iwr URL | iex` both work on the bare URL; a browser goes to the web
  // console (or, without one, gets the one-liners).
  app.get("/", (c) => {
    c.header("Vary", "User-Agent");
    const agent = c.req.header("user-agent") ?? "";
    if (/PowerShell/i.test(agent)) return installScript(c, deps, "ps1");
    if (/Mozilla/i.test(agent)) {
      if (options.console) return c.redirect("/console/", 303);
      return c.body(oneLiners(deps.publicUrl), 200, { "content-type": TEXT });
    }
    return installScript(c, deps, "sh");
  });
  app.get("/releases/:version/:file", (c) => releaseFile(c, deps));
}

/** The install commands, for people (the enrollment-token response carries them with a token). */
export function oneLiners(publicUrl: string): string {
  const commands = installCommands(publicUrl);
  return [
    "# Install the AEGIS Edge CLI from this controller:",
    `${commands.linux}          # Linux, macOS`,
    `${commands.windows}        # Windows PowerShell 5.1 / 7`,
    `brew tap ORG/aegis && brew install aegis-cli       # the tap holds ${publicUrl}/releases/latest/${FORMULA_FILE}`,
    "",
  ].join("\n");
}

async function installScript(c: Context, deps: BootstrapDeps, kind: InstallScript) {
  try {
    const release = await deps.catalog.current();
    const values = await installScriptValues(release, deps.publicUrl, deps.caPem);
    return c.body(renderInstallScript(kind, values), 200, {
      "content-type": TEXT,
      "cache-control": "no-cache",
    });
  } catch (error) {
    return failure(c, deps, error, kind);
  }
}

async function releaseFile(c: Context, deps: BootstrapDeps) {
  try {
    const version = c.req.param("version") ?? "";
    const name = c.req.param("file") ?? "";
    const release = await deps.catalog.release(version);
    // `latest` moves; a versioned file never changes.
    const cache = version === "latest" ? "no-cache" : "public, max-age=31536000, immutable";
    if (name === FORMULA_FILE) {
      const base = `${deps.publicUrl}/releases/${release.version}`;
      return c.body(renderFormula(release.manifest, base), 200, {
        "content-type": "text/x-ruby; charset=utf-8",
        "cache-control": cache,
      });
    }
    const path = await releaseFilePath(release, name);
    const artifact = release.manifest.artifacts.some((a) => a.file === name);
    const headers: Record<string, string> = {
      "content-type": artifact ? "application/octet-stream" : TEXT,
      "cache-control": cache,
      "x-content-type-options": "nosniff",
    };
    // HEAD is answered by this GET route; it gets the length without the file being opened.
    if (c.req.method === "HEAD") {
      headers["content-length"] = String((await Deno.stat(path)).size);
      return c.body(null, 200, headers);
    }
    const file = await Deno.open(path);
    headers["content-length"] = String((await file.stat()).size);
    return c.body(file.readable, 200, headers);
  } catch (error) {
    return failure(c, deps, error);
  }
}

/**
 * Errors as plain text. For the install scripts the text is itself a script that says what is
 * wrong and fails, so `curl URL | sh` without -f still prints the reason rather than running junk.
 */
function failure(c: Context, deps: BootstrapDeps, error: unknown, kind?: InstallScript) {
  const aegis = toAegisError(error);
  const internal = aegis.code === "INTERNAL";
  if (internal) deps.log(`bootstrap ${c.req.path}: ${aegis.message}`);
  // Details of a broken release (paths, parse errors) go to the log, not to anonymous callers.
  const message = internal
    ? "aegis-controller: the served release is unusable; the controller's log says why"
    : `aegis-controller: ${aegis.message}${aegis.hint ? ` (${aegis.hint})` : ""}`;
  const status = (aegis instanceof AegisError ? aegis.httpStatus : 500) as 404 | 500;
  const body = kind === "sh"
    ? `echo ${shellWord(message)} >&2\nexit 1\n`
    : kind === "ps1"
    ? `throw '${message.replaceAll("'", "''")}'\n`
    : `${message}\n`;
  // nosniff: the message can echo part of the request path (an unknown version or file name);
  // it must stay text, never be sniffed into HTML by a browser that follows a crafted link.
  return c.body(body, status, {
    "content-type": TEXT,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
}

function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
