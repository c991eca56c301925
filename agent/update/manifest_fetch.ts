// The signed manifest from the controller, verified with the key this binary was built with
// (never a key that came with the download): a controller that was taken over can withhold
// releases but cannot make a host install one the release key did not sign.
import {
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  MAX_MANIFEST_BYTES,
  MAX_SIGNATURE_BYTES,
  type ReleaseManifest,
} from "../../shared/release/manifest.ts";
import type { ReleasePublicKey } from "../../shared/release/minisign.ts";
import { readVerifiedManifest } from "../../shared/release/read_manifest.ts";
import { readBounded } from "./bounded_body.ts";
import { fetchRelease, type ReleaseSource } from "./release_source.ts";

export async function fetchVerifiedManifest(
  source: ReleaseSource,
  publicKey: ReleasePublicKey,
): Promise<ReleaseManifest> {
  const manifest = await fetchRelease(
    source,
    MANIFEST_FILE,
    (r) => readBounded(r, MAX_MANIFEST_BYTES, MANIFEST_FILE),
  );
  const signature = await fetchRelease(
    source,
    MANIFEST_SIGNATURE_FILE,
    (r) => readBounded(r, MAX_SIGNATURE_BYTES, MANIFEST_SIGNATURE_FILE),
  );
  return readVerifiedManifest(manifest, new TextDecoder().decode(signature), publicKey);
}
