// Downloads one artifact into a staging directory beside the installed versions, checked against
// the signed manifest as it streams: never more bytes than the manifest's size, and the SHA-256
// must match before the file may run. A failure removes the staging directory: nothing of an
// unverified download stays on disk.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { ensureDir } from "../../shared/fs/atomic.ts";
import type { ReleaseArtifact } from "../../shared/release/manifest.ts";
import { boundedChunks } from "./bounded_body.ts";
import { fetchRelease, type ReleaseSource } from "./release_source.ts";
import type { UpdateLayout } from "./layout.ts";

/** Generous for a ~100 MiB binary over a slow link; the manifest's size bounds the bytes. */
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

export interface Staged {
  dir: string;
  binary: string;
  discard(): Promise<void>;
}

export async function downloadArtifact(
  source: ReleaseSource,
  layout: UpdateLayout,
  artifact: ReleaseArtifact,
): Promise<Staged> {
  await ensureDir(layout.versions, 0o700);
  const dir = join(layout.versions, `.staging-${crypto.randomUUID()}`);
  await Deno.mkdir(dir, { mode: 0o700 });
  const staged = {
    dir,
    binary: join(dir, layout.binaryName),
    discard: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
  try {
    const { sha256, size } = await fetchRelease(
      source,
      artifact.file,
      (response) => writeHashed(response, staged.binary, artifact),
      DOWNLOAD_TIMEOUT_MS,
    );
    if (size !== artifact.size || sha256 !== artifact.sha256) {
      throw new AegisError(
        "RELEASE_SIGNATURE_INVALID",
        `${artifact.file} does not match the signed manifest (got ${size} bytes, sha256 ${sha256}; ` +
          `expected ${artifact.size} bytes, sha256 ${artifact.sha256}); refused`,
      );
    }
    if (Deno.build.os !== "windows") await Deno.chmod(staged.binary, 0o755);
    return staged;
  } catch (error) {
    await staged.discard();
    throw error;
  }
}

async function writeHashed(
  response: Response,
  path: string,
  artifact: ReleaseArtifact,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  // 0600 until verified: nothing may run it before the hash matches. Truncated, not createNew:
  // when one endpoint's body breaks off, fetchRelease tries the next into the same (private,
  // fresh) staging file, and must start it from nothing.
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    for await (const chunk of boundedChunks(response, artifact.size, artifact.file)) {
      hash.update(chunk);
      size += chunk.byteLength;
      let written = 0;
      while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
    }
    await file.sync();
  } finally {
    file.close();
  }
  return { sha256: hash.digest("hex"), size };
}
