// The releases this controller serves at its bootstrap URL: <releases_dir>/<version>/ as
// `deno task build` writes it. Everything here is read by unauthenticated requests, so every
// read is bounded and only names the signed manifest lists (plus its four fixed companions) are
// ever turned into paths.
import { join } from "node:path";
import { AegisError, toAegisError } from "../../shared/errors.ts";
import { parseEndpointList } from "../../shared/endpoint.ts";
import {
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  MAX_MANIFEST_BYTES,
  PUBLIC_KEY_FILE,
  type ReleaseManifest,
  SUMS_FILE,
  VERSION_PATTERN,
} from "../../shared/release/manifest.ts";
import { readVerifiedManifest } from "../../shared/release/read_manifest.ts";
import type { ControllerConfig } from "../config.ts";

/** Files of a release besides its artifacts; all small text. */
export const RELEASE_TEXT_FILES = [
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  SUMS_FILE,
  PUBLIC_KEY_FILE,
] as const;
const MAX_TEXT_FILE_BYTES = MAX_MANIFEST_BYTES;
/** A directory of thousands of versions is a mistake, not a catalog; we look at this many. */
const MAX_VERSION_DIRS = 1024;
/**
 * Unauthenticated requests may come fast: the directory is scanned, and a release's signature
 * checked, at most this often; a new release shows within this time.
 */
const CACHE_TTL_MS = 2_000;
const MAX_CACHED_RELEASES = 16;

export interface Release {
  version: string;
  dir: string;
  manifest: ReleaseManifest;
}

export interface ReleaseCatalogOptions {
  releasesDir?: string;
  /** Serve this version rather than the highest one. */
  pinnedVersion?: string;
  now?: () => number;
}

export class ReleaseCatalog {
  readonly #dir?: string;
  readonly #pinned?: string;
  readonly #now: () => number;
  #latest?: { at: number; version: string };
  readonly #releases = new Map<string, { at: number; release: Release }>();

  constructor(options: ReleaseCatalogOptions) {
    this.#dir = options.releasesDir;
    this.#pinned = options.pinnedVersion;
    this.#now = options.now ?? Date.now;
  }

  /** The release `latest` names: the pinned version, else the highest complete one. */
  async current(): Promise<Release> {
    const dir = this.#requireDir();
    if (!this.#latest || this.#now() - this.#latest.at >= CACHE_TTL_MS) {
      const version = this.#pinned ?? await highestComplete(dir);
      if (!version) {
        throw new AegisError("NOT_FOUND", "no signed release in bootstrap.releases_dir", {
          hint: "Run `deno task build` and copy dist/<version>/ into bootstrap.releases_dir.",
        });
      }
      this.#latest = { at: this.#now(), version };
    }
    return await this.release(this.#latest.version);
  }

  /** A named version, or `latest`. */
  async release(version: string): Promise<Release> {
    if (version === "latest") return await this.current();
    const dir = this.#requireDir();
    if (!VERSION_PATTERN.test(version)) {
      throw new AegisError("NOT_FOUND", `"${version}" is not a release version`);
    }
    const cached = this.#releases.get(version);
    if (cached && this.#now() - cached.at < CACHE_TTL_MS) return cached.release;
    const releaseDir = join(dir, version);
    if (!await isComplete(releaseDir)) {
      throw new AegisError("NOT_FOUND", `release ${version} is not served here`);
    }
    const release = {
      version,
      dir: releaseDir,
      manifest: await verifiedManifest(releaseDir, version),
    };
    if (this.#releases.size >= MAX_CACHED_RELEASES) this.#releases.clear();
    this.#releases.set(version, { at: this.#now(), release });
    return release;
  }

  #requireDir(): string {
    if (this.#dir === undefined) {
      throw new AegisError("NOT_FOUND", "this controller serves no releases", {
        hint: "Set bootstrap.releases_dir in the controller config.",
      });
    }
    return this.#dir;
  }
}

/**
 * The path of one file of a release: only the fixed companions and the artifacts the manifest
 * lists, and only a regular file that really lies inside the release directory (a symlink out of
 * it is refused).
 */
export async function releaseFilePath(release: Release, name: string): Promise<string> {
  const known = (RELEASE_TEXT_FILES as readonly string[]).includes(name) ||
    release.manifest.artifacts.some((a) => a.file === name);
  if (!known) {
    throw new AegisError("NOT_FOUND", `release ${release.version} has no file "${name}"`);
  }
  const path = join(release.dir, name);
  try {
    const [real, realDir] = await Promise.all([Deno.realPath(path), Deno.realPath(release.dir)]);
    const info = await Deno.stat(real);
    if (real === join(realDir, name) && info.isFile) return real;
  } catch { /* fall through: missing */ }
  throw new AegisError("NOT_FOUND", `release ${release.version} is missing "${name}" on disk`);
}

/** Reads one of a release's small text files (manifest, signature, sums, key), bounded. */
export async function readReleaseText(release: Release, name: string): Promise<string> {
  return await readBounded(await releaseFilePath(release, name));
}

/**
 * The URL hosts reach the bootstrap endpoints at: bootstrap.public_url, else the scheme, host
 * and port of the advertised endpoint (`host:port` means TLS, as it does in tokens).
 */
export function publicBootstrapUrl(config: ControllerConfig, publicEndpoint: string): string {
  const explicit = config.bootstrap.public_url;
  if (explicit) {
    const url = new URL(explicit);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new AegisError("CONFIG_INVALID", `bootstrap.public_url "${explicit}" is not http(s)`);
    }
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
  }
  return parseEndpointList(publicEndpoint)[0].baseUrl;
}

export function compareVersions(a: string, b: string): number {
  const [coreA, preA] = splitVersion(a);
  const [coreB, preB] = splitVersion(b);
  for (let i = 0; i < 3; i++) {
    if (coreA[i] !== coreB[i]) return coreA[i] - coreB[i];
  }
  // A pre-release sorts before its release (1.0.0-rc.1 < 1.0.0).
  if (preA === preB) return 0;
  if (preA === undefined) return 1;
  if (preB === undefined) return -1;
  return comparePrerelease(preA.split("."), preB.split("."));
}

/** Semver's rule: numeric identifiers numerically and below alphanumeric ones, then length. */
function comparePrerelease(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i], b[i]];
    if (x === y) continue;
    const [nx, ny] = [/^\d+$/.test(x), /^\d+$/.test(y)];
    if (nx && ny) return Number(x) - Number(y);
    if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function splitVersion(version: string): [number[], string | undefined] {
  const dash = version.indexOf("-");
  const core = dash < 0 ? version : version.slice(0, dash);
  return [core.split(".").map(Number), dash < 0 ? undefined : version.slice(dash + 1)];
}

async function highestComplete(dir: string): Promise<string | undefined> {
  const versions: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory && VERSION_PATTERN.test(entry.name)) versions.push(entry.name);
      if (versions.length >= MAX_VERSION_DIRS) break;
    }
  } catch (error) {
    throw new AegisError("NOT_FOUND", "cannot read bootstrap.releases_dir", {
      cause: error,
    });
  }
  versions.sort(compareVersions).reverse();
  for (const version of versions) {
    if (await isComplete(join(dir, version))) return version;
  }
  return undefined;
}

/** A half-copied release (no signature or key yet) is not served. */
async function isComplete(releaseDir: string): Promise<boolean> {
  for (const name of [MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, PUBLIC_KEY_FILE]) {
    const info = await Deno.stat(join(releaseDir, name)).catch(() => undefined);
    if (!info?.isFile) return false;
  }
  return true;
}

/**
 * The manifest, checked against the release's own key. That proves nothing to a host (which
 * pins the key itself) but refuses to serve a release whose files do not fit together, so a
 * broken copy shows in the controller's log rather than as failed installs.
 */
async function verifiedManifest(releaseDir: string, version: string): Promise<ReleaseManifest> {
  const [manifest, signature, key] = await Promise.all(
    [MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, PUBLIC_KEY_FILE].map((name) =>
      readBounded(join(releaseDir, name))
    ),
  );
  let parsed: ReleaseManifest;
  try {
    parsed = readVerifiedManifest(new TextEncoder().encode(manifest), signature, key);
  } catch (error) {
    throw new AegisError(
      "INTERNAL",
      `release ${version} is not usable: ${toAegisError(error).message}`,
      {
        cause: error,
      },
    );
  }
  if (parsed.version !== version) {
    throw new AegisError(
      "INTERNAL",
      `release directory ${version} holds the manifest of ${parsed.version}`,
    );
  }
  return parsed;
}

async function readBounded(path: string): Promise<string> {
  const file = await Deno.open(path);
  try {
    const size = (await file.stat()).size;
    if (size > MAX_TEXT_FILE_BYTES) {
      throw new AegisError("INTERNAL", `${path} is larger than ${MAX_TEXT_FILE_BYTES} bytes`);
    }
    const buffer = new Uint8Array(size);
    let read = 0;
    while (read < size) {
      const n = await file.read(buffer.subarray(read));
      if (n === null) break;
      read += n;
    }
    return new TextDecoder().decode(buffer.subarray(0, read));
  } finally {
    file.close();
  }
}
