// A signed release directory for the installer tests, written by the build's own writeRelease
// with a fresh test key. Its binaries are fixtures: small sh launchers that run the `aegis`
// entry point from this checkout with `deno run` (`deno compile` cannot fetch its runtime here).
import { join } from "node:path";
import { writeRelease } from "../../shared/release/write_release.ts";
import {
  generateReleaseKey,
  parsePublicKey,
  publicKeyBase64,
} from "../../shared/release/minisign.ts";
import type { ReleaseArch, ReleaseManifest, ReleaseOs } from "../../shared/release/manifest.ts";
import { VERSION } from "../../shared/version.ts";
import { AGENT_MAIN } from "../support/processes.ts";

export interface ReleaseFixture {
  /** bootstrap.releases_dir */
  releasesDir: string;
  version: string;
  manifest: ReleaseManifest;
  /** The base64 line of release.pub (what AEGIS_RELEASE_PUBKEY pins). */
  publicKey: string;
  secretKeyText: string;
  cleanup(): Promise<void>;
}

const PLATFORMS: [ReleaseOs, ReleaseArch][] = [
  ["linux", "x86_64"],
  ["linux", "arm64"],
  ["macos", "x86_64"],
  ["macos", "arm64"],
  ["windows", "x86_64"],
];

/** The version the fixture launcher prints is the checkout's, so the release carries that one. */
export async function makeReleaseFixture(): Promise<ReleaseFixture> {
  const root = await Deno.makeTempDir({ prefix: "aegis-release-" });
  const launcher = join(root, "aegis-launcher");
  await Deno.writeTextFile(launcher, launcherScript(await denoAnyoneRuns(root)));
  const key = generateReleaseKey("aegis test release key");
  const releasesDir = join(root, "releases");
  const manifest = await writeRelease({
    outDir: releasesDir,
    version: VERSION,
    secretKeyText: key.secretKeyText,
    artifacts: PLATFORMS.map(([os, arch]) => ({ name: "aegis", os, arch, path: launcher })),
  });
  return {
    releasesDir,
    version: VERSION,
    manifest,
    publicKey: publicKeyBase64(parsePublicKey(key.publicKeyText)),
    secretKeyText: key.secretKeyText,
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
}

/**
 * This Deno, where the user the installs run as (nobody, when the tests run as root) may execute
 * it: CI installs Deno into a private (0700) temporary directory, so as root the binary is copied
 * into the fixture's own directory, readable by all.
 */
async function denoAnyoneRuns(root: string): Promise<string> {
  if (Deno.uid() !== 0) return Deno.execPath();
  await Deno.chmod(root, 0o755);
  const copy = join(root, "deno");
  await Deno.copyFile(Deno.execPath(), copy);
  await Deno.chmod(copy, 0o755);
  return copy;
}

/** A fixture launcher: the real CLI, run from source by this Deno. */
function launcherScript(deno: string): string {
  return [
    "#!/bin/sh",
    "# fixture: the aegis CLI run from source (tests only)",
    `exec '${deno}' run -A --quiet '${AGENT_MAIN}' "$@"`,
    "",
  ].join("\n");
}

/** The first artifact for a platform, as a path inside the release directory. */
export function artifactPath(fixture: ReleaseFixture, os: ReleaseOs, arch: ReleaseArch): string {
  const artifact = fixture.manifest.artifacts.find((a) =>
    a.name === "aegis" && a.os === os && a.arch === arch
  )!;
  return join(fixture.releasesDir, fixture.version, artifact.file);
}
