// Writes one signed release directory, <outDir>/<version>/, as the controller serves it and
// `aegis update` reads it: the artifacts, manifest.json, its minisign signature, SHA256SUMS and
// release.pub. Everything is written into a hidden staging directory first and renamed into
// place, so a reader (a controller serving releases_dir) sees the whole release or none of it.
import { join } from "node:path";
import { AegisError } from "../errors.ts";
import { ensureDir, exists, syncDir, writeFileAtomic } from "../fs/atomic.ts";
import {
  artifactFileName,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  PUBLIC_KEY_FILE,
  type ReleaseArch,
  type ReleaseArtifact,
  type ReleaseBinary,
  type ReleaseManifest,
  ReleaseManifestSchema,
  type ReleaseOs,
  SUMS_FILE,
  VERSION_PATTERN,
} from "./manifest.ts";
import { formatPublicKey, parseSecretKey, signDetached } from "./minisign.ts";
import { copyFileHashed, renderSums, sha256Hex } from "./sums.ts";

export { readVerifiedManifest } from "./read_manifest.ts";

export interface ReleaseArtifactInput {
  name: ReleaseBinary;
  os: ReleaseOs;
  arch: ReleaseArch;
  /** The built file; copied into the release under artifactFileName(). */
  path: string;
}

export interface WriteReleaseOptions {
  outDir: string;
  version: string;
  artifacts: readonly ReleaseArtifactInput[];
  /**
   * minisign's unencrypted secret key text (release.key). Null only for an --unsigned build:
   * then there is no manifest.json.minisig and no release.pub, and nothing will install it.
   */
  secretKeyText: string | null;
  createdAt?: Date;
  /** Replace an existing <outDir>/<version>/ (otherwise a release version is written once). */
  replace?: boolean;
}

/** The trusted (signed) comment on manifest.json.minisig; minisign prints it on verify. */
export function manifestTrustedComment(version: string, createdAt: Date): string {
  const timestamp = Math.floor(createdAt.getTime() / 1000);
  return `timestamp:${timestamp}\tfile:${MANIFEST_FILE}\tversion:${version}\tproduct:aegis-edge`;
}

export async function writeRelease(options: WriteReleaseOptions): Promise<ReleaseManifest> {
  const { outDir, version } = options;
  if (!VERSION_PATTERN.test(version)) {
    throw new AegisError("INVALID_ARGUMENT", `"${version}" is not a release version (1.2.3)`);
  }
  const secretKey = options.secretKeyText === null
    ? undefined
    : parseSecretKey(options.secretKeyText);
  checkUnique(options.artifacts);
  const finalDir = join(outDir, version);
  if (!options.replace && await exists(finalDir)) {
    throw new AegisError("CONFLICT", `${finalDir} already exists`, {
      hint: "A release version is written once: bump the version, or pass --replace.",
    });
  }
  await ensureDir(outDir, 0o755);
  const stage = join(outDir, `.${version}.${crypto.randomUUID()}.tmp`);
  await ensureDir(stage, 0o755);
  try {
    const createdAt = options.createdAt ?? new Date();
    const artifacts: ReleaseArtifact[] = [];
    for (const input of sortArtifacts(options.artifacts)) {
      const file = artifactFileName(input.name, version, input.os, input.arch);
      const { sha256, size } = await copyFileHashed(input.path, join(stage, file), 0o755);
      artifacts.push({ name: input.name, os: input.os, arch: input.arch, file, sha256, size });
    }
    const manifest = ReleaseManifestSchema.parse({
      schema: 1,
      version,
      created_at: createdAt.toISOString(),
      artifacts,
    });
    const manifestText = JSON.stringify(manifest, null, 2) + "\n";
    const manifestBytes = new TextEncoder().encode(manifestText);
    // SHA256SUMS lists the artifacts and the manifest: what a person downloads and checks.
    const sums = renderSums([
      ...artifacts.map((a) => ({ sha256: a.sha256, file: a.file })),
      { sha256: sha256Hex(manifestBytes), file: MANIFEST_FILE },
    ]);
    await writeFileAtomic(join(stage, MANIFEST_FILE), manifestBytes);
    await writeFileAtomic(join(stage, SUMS_FILE), sums);
    if (secretKey) {
      const comment = manifestTrustedComment(version, createdAt);
      const signature = signDetached(manifestBytes, secretKey, comment);
      await writeFileAtomic(join(stage, MANIFEST_SIGNATURE_FILE), signature);
      await writeFileAtomic(join(stage, PUBLIC_KEY_FILE), formatPublicKey(secretKey.public));
    }
    await swapInto(stage, finalDir, outDir);
    return manifest;
  } catch (error) {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
    throw error;
  }
}

/** Renames the staged release into place; an old one is moved aside first, then removed. */
async function swapInto(stage: string, finalDir: string, outDir: string): Promise<void> {
  let aside: string | undefined;
  if (await exists(finalDir)) {
    aside = `${stage}.old`;
    await Deno.rename(finalDir, aside);
  }
  try {
    await Deno.rename(stage, finalDir);
  } catch (error) {
    if (aside) await Deno.rename(aside, finalDir).catch(() => {});
    throw error;
  }
  await syncDir(outDir);
  if (aside) await Deno.remove(aside, { recursive: true });
}

function checkUnique(artifacts: readonly ReleaseArtifactInput[]): void {
  if (artifacts.length === 0) {
    throw new AegisError("INVALID_ARGUMENT", "a release needs at least one artifact");
  }
  const seen = new Set<string>();
  for (const a of artifacts) {
    const key = `${a.name}/${a.os}/${a.arch}`;
    if (seen.has(key)) throw new AegisError("INVALID_ARGUMENT", `${key} is given twice`);
    seen.add(key);
  }
}

function sortArtifacts(artifacts: readonly ReleaseArtifactInput[]): ReleaseArtifactInput[] {
  const key = (a: ReleaseArtifactInput) => `${a.name}/${a.os}/${a.arch}`;
  return [...artifacts].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}
