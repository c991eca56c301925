// The steps an update shares, whoever runs it (`aegis update` or the daemon for a fleet upgrade):
// check the signed release, install it side by side, switch with a pending marker, and switch
// back. Each step leaves the host consistent: until `activate`, the service's path is untouched.
import { AegisError } from "../../shared/errors.ts";
import { ensureDir } from "../../shared/fs/atomic.ts";
import type { ReleaseArtifact, ReleaseManifest } from "../../shared/release/manifest.ts";
import type { ReleasePublicKey } from "../../shared/release/minisign.ts";
import { VERSION } from "../../shared/version.ts";
import { compareVersions } from "../../shared/version_order.ts";
import { selfCommand } from "../self.ts";
import { currentVersion, type UpdateLayout, versionBinary, versionDir } from "./layout.ts";
import { fetchVerifiedManifest } from "./manifest_fetch.ts";
import { downloadArtifact } from "./download.ts";
import { preflight } from "./preflight.ts";
import { pruneVersions } from "./prune.ts";
import { switchTo } from "./switch.ts";
import { pendingMarker, readMarker, type UpdateMarker, writeMarker } from "./marker.ts";
import type { ReleaseSource } from "./release_source.ts";
import { releasePlatform } from "./platform.ts";

export type Checked =
  | { kind: "current"; version: string }
  | { kind: "available"; from: string; to: string; artifact: ReleaseArtifact };

/** What the controller offers against what runs here. Fails closed on any doubt. */
export async function checkRelease(
  source: ReleaseSource,
  layout: UpdateLayout,
  publicKey: ReleasePublicKey,
  wanted?: string,
  options: { allowDowngrade?: boolean } = {},
): Promise<Checked> {
  const manifest = await fetchVerifiedManifest(source, publicKey);
  if (wanted !== undefined && manifest.version !== wanted) {
    throw new AegisError(
      "NOT_FOUND",
      `the controller serves version ${manifest.version}, not ${wanted}`,
      { hint: "Serve that release (bootstrap.release_version) or leave out --version." },
    );
  }
  const from = await currentVersion(layout) ?? VERSION;
  // The circuit breaker: the same version is never installed over itself (no restart loop).
  if (manifest.version === from) return { kind: "current", version: from };
  // An older release is signed too: a controller that was taken over could serve one with a
  // known hole. Going back happens only when asked for by name, and only by a person on the
  // host (allowDowngrade: a fleet request's version comes from the controller).
  if (
    compareVersions(manifest.version, from) < 0 &&
    (wanted !== manifest.version || options.allowDowngrade === false)
  ) {
    throw new AegisError(
      "UPDATE_FAILED",
      `the controller serves ${manifest.version}, older than ${from} here; not downgrading`,
      {
        hint: options.allowDowngrade === false
          ? `A fleet upgrade never goes back; on the host: aegis update --version ${manifest.version}.`
          : `To go back on purpose, name it: --version ${manifest.version}.`,
      },
    );
  }
  return { kind: "available", from, to: manifest.version, artifact: artifactFor(manifest) };
}

function artifactFor(manifest: ReleaseManifest): ReleaseArtifact {
  const { os, arch } = releasePlatform();
  const artifact = manifest.artifacts.find((a) =>
    a.name === "aegis" && a.os === os && a.arch === arch
  );
  if (!artifact) {
    throw new AegisError("NOT_FOUND", `release ${manifest.version} has no aegis for ${os}/${arch}`);
  }
  return artifact;
}

/** Refuses while another update's marker is still pending. */
export async function requireNoPendingUpdate(layout: UpdateLayout): Promise<void> {
  const marker = await readMarker(layout.marker);
  if (marker?.state === "pending" && Date.parse(marker.deadline) > Date.now()) {
    throw new AegisError(
      "CONFLICT",
      `an update from ${marker.from_version} to ${marker.to_version} is in progress until ${marker.deadline}`,
    );
  }
}

/**
 * Makes sure the version running now is installed side by side, so there is something to roll
 * back to. The first update adopts a compiled binary installed elsewhere (install.sh's
 * /usr/local/bin/aegis) by copying it; a program run from source cannot be adopted.
 */
export async function ensureRollbackTarget(layout: UpdateLayout, from: string): Promise<void> {
  if (await currentVersion(layout) === from) return;
  const command = selfCommand();
  if (command.length !== 1 || from !== VERSION) {
    throw new AegisError(
      "UPDATE_FAILED",
      "this aegis runs from source (deno run), so there is no binary to keep for a rollback",
      { hint: "Install a release with install.sh or install.ps1, then update that." },
    );
  }
  await ensureDir(versionDir(layout, from), 0o700);
  await Deno.copyFile(command[0], versionBinary(layout, from));
  await switchTo(layout, from);
}

/** Downloads, verifies and pre-flights the new binary, then moves it into versions/<to>/. */
export async function installRelease(
  source: ReleaseSource,
  layout: UpdateLayout,
  release: Extract<Checked, { kind: "available" }>,
): Promise<void> {
  const staged = await downloadArtifact(source, layout, release.artifact);
  try {
    await preflight(staged.binary, release.to);
    // A failed earlier attempt at this version may have left its directory: replace it.
    await Deno.remove(versionDir(layout, release.to), { recursive: true }).catch(() => {});
    await Deno.rename(staged.dir, versionDir(layout, release.to));
  } finally {
    await staged.discard();
  }
}

/** Writes the pending marker, switches, and keeps only the two versions a rollback needs. */
export async function activate(
  layout: UpdateLayout,
  from: string,
  to: string,
  deadlineMs: number | undefined,
): Promise<void> {
  if (deadlineMs !== undefined) {
    await writeMarker(layout.marker, pendingMarker(from, to, deadlineMs));
  }
  await switchTo(layout, to);
  await pruneVersions(layout, [from, to]);
}

/** Switches back to the marker's previous version and records why. */
export async function rollBack(layout: UpdateLayout, marker: UpdateMarker, reason: string) {
  await switchTo(layout, marker.from_version);
  await writeMarker(layout.marker, {
    ...marker,
    state: "rolled_back",
    reason: reason.slice(0, 1024),
  });
}
