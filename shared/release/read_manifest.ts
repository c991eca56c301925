// Reading a downloaded release manifest: the signature first (with a key the reader already
// trusts, never one that came with the download), then the schema. Self-update and the
// controller both read manifests this way, so both refuse the same things.
import { AegisError } from "../errors.ts";
import {
  artifactFileName,
  MANIFEST_FILE,
  MAX_MANIFEST_BYTES,
  type ReleaseManifest,
  ReleaseManifestSchema,
} from "./manifest.ts";
import { parsePublicKey, type ReleasePublicKey, verifyDetached } from "./minisign.ts";

/**
 * Verifies manifest.json against its minisign signature and returns the parsed manifest.
 * Throws RELEASE_SIGNATURE_INVALID for anything short of a well-formed, correctly signed
 * manifest: too large, bad signature, a trusted comment naming another file or version, a
 * schema mismatch, or artifacts not named as the build names them.
 */
export function readVerifiedManifest(
  manifestBytes: Uint8Array,
  signatureText: string,
  publicKey: ReleasePublicKey | string,
): ReleaseManifest {
  if (manifestBytes.length > MAX_MANIFEST_BYTES) {
    throw refused(`it is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  const key = typeof publicKey === "string" ? parsePublicKey(publicKey) : publicKey;
  const { trustedComment } = verifyDetached(manifestBytes, signatureText, key);
  // The comment is signed too; checking it stops another file signed by the same key (say a
  // JSON document an operator signed with minisign) from standing in for a manifest.
  const fields = new Map(
    trustedComment.split("\t").map((
      f,
    ) => [f.slice(0, f.indexOf(":")), f.slice(f.indexOf(":") + 1)]),
  );
  if (fields.get("file") !== MANIFEST_FILE) {
    throw refused(`its signature is for "${fields.get("file") ?? "?"}", not ${MANIFEST_FILE}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestBytes));
  } catch {
    throw refused("it is not UTF-8 JSON");
  }
  const parsed = ReleaseManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw refused(`it does not match the schema (${parsed.error.issues[0]?.message})`);
  }
  const manifest = parsed.data;
  const version = fields.get("version");
  if (version !== undefined && version !== manifest.version) {
    throw refused(`its signature names version ${version}, the manifest ${manifest.version}`);
  }
  checkArtifacts(manifest);
  return manifest;
}

function checkArtifacts(manifest: ReleaseManifest): void {
  const seen = new Set<string>();
  for (const a of manifest.artifacts) {
    const key = `${a.name}/${a.os}/${a.arch}`;
    if (seen.has(key)) throw refused(`${key} is listed twice`);
    seen.add(key);
    if (a.file !== artifactFileName(a.name, manifest.version, a.os, a.arch)) {
      throw refused(`${a.file} is not the file name a build gives ${key}`);
    }
  }
}

function refused(why: string): AegisError {
  return new AegisError("RELEASE_SIGNATURE_INVALID", `release manifest refused: ${why}`);
}
