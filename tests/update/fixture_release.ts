// Fixture releases for the self-update tests: `deno compile` cannot fetch its runtime here, so
// each "binary" is a launcher script that runs agent/main.ts with `deno run`, with an import map
// that puts a generated embedded_build.ts (version + release key) where a release build compiles
// its own. The launchers are signed into a real release directory by writeRelease, which is what
// the controller serves.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { generateReleaseKey } from "../../shared/release/minisign.ts";
import { writeRelease } from "../../shared/release/write_release.ts";
import type { ReleaseManifest } from "../../shared/release/manifest.ts";
import { releasePlatform } from "../../agent/update/platform.ts";
import { AGENT_MAIN, ROOT } from "../support/processes.ts";

export interface ReleaseKey {
  secretKeyText: string;
  publicKeyText: string;
}

export function releaseKey(): ReleaseKey {
  const { secretKeyText, publicKeyText } = generateReleaseKey("aegis fixture release key");
  return { secretKeyText, publicKeyText };
}

export interface LauncherOptions {
  version: string;
  /** The key compiled in; null builds an unsigned binary (self-update refused). */
  key: ReleaseKey | null;
  /** A release whose daemon cannot reach anything: `deno run` is denied the network. */
  denyNet?: boolean;
  /** A release whose daemon exits at once (`--version` still works, so it passes pre-flight). */
  daemonExits?: boolean;
}

/** A launcher for `version` under `dir`; returns its path. */
export async function buildLauncher(dir: string, options: LauncherOptions): Promise<string> {
  const variant = options.denyNet ? "-nonet" : options.daemonExits ? "-exits" : "";
  const build = join(dir, `build-${options.version}${variant}`);
  await Deno.mkdir(build, { recursive: true });
  const embedded = join(build, "embedded_build.ts");
  const publicKeyLine = options.key ? options.key.publicKeyText.trim().split("\n").pop()! : null;
  await Deno.writeTextFile(
    embedded,
    [
      "export interface EmbeddedBuild { version: string; releasePublicKey: string | null; builtAt: string }",
      `export const EMBEDDED_BUILD: EmbeddedBuild | null = ${
        JSON.stringify({
          version: options.version,
          releasePublicKey: publicKeyLine,
          builtAt: new Date().toISOString(),
        })
      };`,
      "",
    ].join("\n"),
  );
  const denoJson = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const importMap = {
    imports: {
      ...denoJson.imports,
      [pathToFileURL(join(ROOT, "shared/release/embedded_build.ts")).href]:
        pathToFileURL(embedded).href,
    },
  };
  const mapPath = join(build, "import_map.json");
  await Deno.writeTextFile(mapPath, JSON.stringify(importMap, null, 2));
  const permissions = options.denyNet ? "-A --deny-net" : "-A";
  const launcher = join(build, "aegis");
  // The module cache stays the test runner's, whatever HOME the host has (no downloads).
  const denoDir = Deno.env.get("DENO_DIR") ?? await infoDenoDir();
  await Deno.writeTextFile(
    launcher,
    `#!/bin/sh\n# Fixture release ${options.version}: runs the source with its build info.\n` +
      (options.daemonExits
        ? `if [ "$1" = edge ] && [ "$2" = run ]; then echo 'fixture: exiting' >&2; exit 1; fi\n`
        : "") +
      `DENO_DIR=\${DENO_DIR:-'${denoDir}'}\nexport DENO_DIR\n` +
      `exec '${Deno.execPath()}' run ${permissions} --quiet --import-map '${mapPath}' '${AGENT_MAIN}' "$@"\n`,
  );
  await Deno.chmod(launcher, 0o755);
  return launcher;
}

/** Signs `launcher` as release `version` into releasesDir/<version>/. */
export async function signRelease(
  releasesDir: string,
  version: string,
  launcher: string,
  key: ReleaseKey,
): Promise<ReleaseManifest> {
  const { os, arch } = releasePlatform();
  return await writeRelease({
    outDir: releasesDir,
    version,
    artifacts: [{ name: "aegis", os, arch, path: launcher }],
    secretKeyText: key.secretKeyText,
    replace: true,
  });
}

async function infoDenoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

/**
 * A release made the way a release is made: `deno task build --fixture` for this platform,
 * signed with the key in `keyFile`, into releasesDir/<version>/. Returns the aegis artifact.
 */
export async function buildTaskRelease(
  releasesDir: string,
  version: string,
  keyFile: string,
): Promise<string> {
  const { os, arch } = releasePlatform();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "scripts/build.ts"),
      "--fixture",
      "--version",
      version,
      "--key",
      keyFile,
      "--target",
      `${os}-${arch}`,
      "--out",
      releasesDir,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`deno task build --fixture failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return join(releasesDir, version, `aegis-${version}-${os}-${arch}`);
}
