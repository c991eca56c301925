// The release manifest: what `deno task build` writes into dist/<version>/, what the controller
// serves at its bootstrap URL, and what install.sh, install.ps1, the Homebrew formula and
// `aegis update` check a download against. The manifest is signed (minisign format, see
// ./minisign.ts); every artifact is named here with its SHA-256 and size, so one verified
// signature vouches for every file.
import { z } from "zod";

export const MANIFEST_FILE = "manifest.json";
/** The detached signature of manifest.json, in minisign's format. */
export const MANIFEST_SIGNATURE_FILE = "manifest.json.minisig";
/** `sha256sum -c` format, for people and tools that check that way. */
export const SUMS_FILE = "SHA256SUMS";
/** The release's public key in minisign's format (`minisign -V -p release.pub`). */
export const PUBLIC_KEY_FILE = "release.pub";

export const RELEASE_OSES = ["linux", "macos", "windows"] as const;
export const RELEASE_ARCHES = ["x86_64", "arm64"] as const;
export const RELEASE_BINARIES = ["aegis", "aegis-controller"] as const;
export type ReleaseOs = typeof RELEASE_OSES[number];
export type ReleaseArch = typeof RELEASE_ARCHES[number];
export type ReleaseBinary = typeof RELEASE_BINARIES[number];

/** A release version: semver without build metadata (1.2.3, 1.2.3-rc.1). */
export const VERSION_PATTERN = /^\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z.-]{1,40})?$/;
/** An artifact's file name: one path segment, no dot files, nothing a shell or URL escapes. */
export const ARTIFACT_FILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** The most a manifest may weigh: a bound for every reader of an untrusted download. */
export const MAX_MANIFEST_BYTES = 64 * 1024;
export const MAX_SIGNATURE_BYTES = 4 * 1024;

export const ReleaseArtifactSchema = z.object({
  name: z.enum(RELEASE_BINARIES),
  os: z.enum(RELEASE_OSES),
  arch: z.enum(RELEASE_ARCHES),
  file: z.string().regex(ARTIFACT_FILE_PATTERN),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().min(1).max(1024 * 1024 * 1024),
}).strict();

export const ReleaseManifestSchema = z.object({
  schema: z.literal(1),
  version: z.string().regex(VERSION_PATTERN),
  /** RFC 3339, when the build signed it. */
  created_at: z.string().datetime(),
  artifacts: z.array(ReleaseArtifactSchema).min(1).max(64),
}).strict();

export type ReleaseArtifact = z.infer<typeof ReleaseArtifactSchema>;
export type ReleaseManifest = z.infer<typeof ReleaseManifestSchema>;

/** The file name `deno task build` gives a binary: aegis-0.2.0-linux-x86_64, …-windows-arm64.exe. */
export function artifactFileName(
  name: ReleaseBinary,
  version: string,
  os: ReleaseOs,
  arch: ReleaseArch,
): string {
  return `${name}-${version}-${os}-${arch}${os === "windows" ? ".exe" : ""}`;
}
