// An attacker's release: the real one with the binary swapped and the manifest re-signed by a
// different key that carries the real key's id, so only the signature itself can tell them
// apart. The release is self-consistent (its release.pub is the forger's), as a compromised
// controller would serve it; only a key pinned out of band (AEGIS_RELEASE_PUBKEY) catches it.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  formatPublicKey,
  generateReleaseKey,
  parseSecretKey,
  signDetached,
} from "../../shared/release/minisign.ts";
import { manifestTrustedComment } from "../../shared/release/write_release.ts";
import {
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  PUBLIC_KEY_FILE,
} from "../../shared/release/manifest.ts";
import { artifactPath, type ReleaseFixture } from "./release_fixture.ts";

/** Rewrites the fixture's linux/x86_64 binary, manifest, signature and key in place. */
export async function forgeRelease(fixture: ReleaseFixture, payload: string): Promise<void> {
  const dir = join(fixture.releasesDir, fixture.version);
  const binary = artifactPath(fixture, "linux", "x86_64");
  await Deno.writeTextFile(binary, payload);
  const bytes = await Deno.readFile(binary);
  const manifest = structuredClone(fixture.manifest);
  const entry = manifest.artifacts.find((a) => a.os === "linux" && a.arch === "x86_64")!;
  entry.sha256 = createHash("sha256").update(bytes).digest("hex");
  entry.size = bytes.length;
  const text = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
  const forger = parseSecretKey(withKeyId(generateReleaseKey().secretKeyText, fixture.publicKey));
  const comment = manifestTrustedComment(manifest.version, new Date(manifest.created_at));
  await Deno.writeFile(join(dir, MANIFEST_FILE), text);
  await Deno.writeTextFile(join(dir, MANIFEST_SIGNATURE_FILE), signDetached(text, forger, comment));
  await Deno.writeTextFile(join(dir, PUBLIC_KEY_FILE), formatPublicKey(forger.public));
}

/** A minisign secret key with another key's 8-byte id (and its checksum zeroed, as minisign allows). */
function withKeyId(secretKeyText: string, publicKeyLine: string): string {
  const [comment, line] = secretKeyText.trim().split("\n");
  const raw = Buffer.from(line, "base64");
  Buffer.from(publicKeyLine, "base64").copy(raw, 54, 2, 10);
  raw.fill(0, 126, 158);
  return `${comment}\n${raw.toString("base64")}\n`;
}
