// Where self-update keeps binaries: every installed version side by side under
// ~/.aegis/edge/versions/<version>/, and one stable path the service runs.
//
// - POSIX: `current` is a symlink to versions/<version>; the service runs current/aegis. A
//   switch renames a fresh symlink over it, which is atomic: a start sees the old binary or the
//   new one, never neither.
// - Windows: symlinks need a privilege users rarely have, and a running .exe cannot be replaced
//   (only renamed). The service runs bin\aegis.exe, a copy; a switch renames the running one
//   aside and the new one in, and bin\version says which it is.
import { join } from "node:path";
import { readTextIfExists } from "../../shared/fs/atomic.ts";
import { VERSION_PATTERN } from "../../shared/release/manifest.ts";
import type { EdgePaths } from "../state/paths.ts";

export interface UpdateLayout {
  windows: boolean;
  versions: string;
  /** POSIX: the `current` symlink. Windows: the bin directory. */
  current: string;
  /** The path the service runs. */
  bin: string;
  /** The pending-update marker (see marker.ts). */
  marker: string;
  binaryName: string;
}

export function updateLayout(paths: EdgePaths, os: string = Deno.build.os): UpdateLayout {
  const windows = os === "windows";
  const binaryName = windows ? "aegis.exe" : "aegis";
  const current = join(paths.dir, windows ? "bin" : "current");
  return {
    windows,
    versions: join(paths.dir, "versions"),
    current,
    bin: join(current, binaryName),
    marker: join(paths.dir, "update.json"),
    binaryName,
  };
}

export function versionDir(layout: UpdateLayout, version: string): string {
  if (!VERSION_PATTERN.test(version)) throw new Error(`not a release version: ${version}`);
  return join(layout.versions, version);
}

export function versionBinary(layout: UpdateLayout, version: string): string {
  return join(versionDir(layout, version), layout.binaryName);
}

/** The version the service runs, or undefined before the first managed install. */
export async function currentVersion(layout: UpdateLayout): Promise<string | undefined> {
  let version: string | undefined;
  if (layout.windows) {
    version = (await readTextIfExists(join(layout.current, "version")))?.trim();
  } else {
    try {
      version = (await Deno.readLink(layout.current)).split(/[\\/]/).filter(Boolean).pop();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return version && VERSION_PATTERN.test(version) ? version : undefined;
}

/** The versions installed side by side (complete installs only: staging dirs start with "."). */
export async function installedVersions(layout: UpdateLayout): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(layout.versions)) {
      if (entry.isDirectory && VERSION_PATTERN.test(entry.name)) found.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}
