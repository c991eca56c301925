import assert from "node:assert/strict";
import { join } from "node:path";
import { writeRelease } from "../../shared/release/write_release.ts";
import { generateReleaseKey } from "../../shared/release/minisign.ts";
import { AegisError } from "../../shared/errors.ts";
import { ControllerConfigSchema } from "../config.ts";
import {
  compareVersions,
  publicBootstrapUrl,
  ReleaseCatalog,
  releaseFilePath,
} from "./releases.ts";

async function releases(versions: string[]) {
  const root = await Deno.makeTempDir({ prefix: "aegis-releases-" });
  const binary = join(root, "binary");
  await Deno.writeTextFile(binary, "#!/bin/sh\necho fixture\n");
  const key = generateReleaseKey();
  const dir = join(root, "releases");
  for (const version of versions) {
    await writeRelease({
      outDir: dir,
      version,
      secretKeyText: key.secretKeyText,
      artifacts: [{ name: "aegis", os: "linux", arch: "x86_64", path: binary }],
    });
  }
  return { root, dir, cleanup: () => Deno.remove(root, { recursive: true }) };
}

async function notFound(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof AegisError, String(error));
  assert.equal(error.code, "NOT_FOUND");
  return error.message;
}

Deno.test("compareVersions() orders by semver, a pre-release before its release", () => {
  const sorted = ["0.10.0", "0.2.0", "1.0.0", "1.0.0-rc.10", "1.0.0-rc.9", "0.9.12", "1.0.0-alpha"]
    .sort(compareVersions);
  assert.deepEqual(sorted, [
    "0.2.0",
    "0.9.12",
    "0.10.0",
    "1.0.0-alpha",
    "1.0.0-rc.9",
    "1.0.0-rc.10",
    "1.0.0",
  ]);
});

Deno.test("ReleaseCatalog.current() serves the highest complete release, or the pinned one", async () => {
  const site = await releases(["0.2.0", "0.10.0", "0.9.0"]);
  try {
    // A half-copied release (no signature yet) is skipped.
    await Deno.mkdir(join(site.dir, "0.11.0"));
    await Deno.writeTextFile(join(site.dir, "0.11.0", "manifest.json"), "{}");
    await Deno.mkdir(join(site.dir, "not-a-version"));
    assert.equal((await new ReleaseCatalog({ releasesDir: site.dir }).current()).version, "0.10.0");
    const pinned = new ReleaseCatalog({ releasesDir: site.dir, pinnedVersion: "0.9.0" });
    assert.equal((await pinned.current()).version, "0.9.0");
    assert.equal((await pinned.release("0.2.0")).manifest.version, "0.2.0");
    assert.match(await notFound(pinned.release("0.11.0")), /not served here/);
    assert.match(await notFound(pinned.release("../0.2.0")), /not a release version/);
  } finally {
    await site.cleanup();
  }
});

Deno.test("ReleaseCatalog: nothing configured, or nothing signed, is NOT_FOUND", async () => {
  assert.match(await notFound(new ReleaseCatalog({}).current()), /serves no releases/);
  const empty = await Deno.makeTempDir();
  try {
    assert.match(
      await notFound(new ReleaseCatalog({ releasesDir: empty }).current()),
      /no signed release/,
    );
  } finally {
    await Deno.remove(empty);
  }
});

Deno.test("ReleaseCatalog refuses a release whose manifest no longer matches its signature", async () => {
  const site = await releases(["1.0.0"]);
  try {
    const path = join(site.dir, "1.0.0", "manifest.json");
    await Deno.writeTextFile(path, (await Deno.readTextFile(path)).replace("x86_64", "arm64"));
    const error = await new ReleaseCatalog({ releasesDir: site.dir }).current().catch((e) => e);
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message, /release 1\.0\.0 is not usable/);
  } finally {
    await site.cleanup();
  }
});

Deno.test("releaseFilePath() names only manifest files, inside the release directory", async () => {
  const site = await releases(["1.0.0"]);
  try {
    const release = await new ReleaseCatalog({ releasesDir: site.dir }).current();
    const artifact = release.manifest.artifacts[0].file;
    assert.equal(
      await releaseFilePath(release, artifact),
      join(await Deno.realPath(site.dir), "1.0.0", artifact),
    );
    assert.ok(await releaseFilePath(release, "SHA256SUMS"));
    await Deno.writeTextFile(join(site.dir, "1.0.0", "extra"), "x");
    for (const name of ["extra", "../1.0.0/manifest.json", "..", "", "/etc/passwd"]) {
      await notFound(releaseFilePath(release, name));
    }
    // A listed artifact that is a symlink out of the release is refused.
    const outside = join(site.root, "outside");
    await Deno.writeTextFile(outside, "secret");
    await Deno.remove(join(site.dir, "1.0.0", artifact));
    await Deno.symlink(outside, join(site.dir, "1.0.0", artifact));
    assert.match(await notFound(releaseFilePath(release, artifact)), /missing/);
  } finally {
    await site.cleanup();
  }
});

Deno.test("publicBootstrapUrl(): bootstrap.public_url, else the advertised endpoint's scheme", () => {
  const config = (bootstrap: Record<string, unknown>) =>
    ControllerConfigSchema.parse({ bootstrap });
  assert.equal(
    publicBootstrapUrl(config({ public_url: "https://get.example.com/" }), "x:1"),
    "https://get.example.com",
  );
  assert.equal(
    publicBootstrapUrl(config({ public_url: "https://example.com/aegis/" }), "x:1"),
    "https://example.com/aegis",
  );
  // host:port means TLS, as it does in tokens; http:// stays plaintext.
  assert.equal(
    publicBootstrapUrl(config({}), "ctl.example.com:8443"),
    "https://ctl.example.com:8443",
  );
  assert.equal(publicBootstrapUrl(config({}), "ctl.example.com"), "https://ctl.example.com:443");
  assert.equal(publicBootstrapUrl(config({}), "http://127.0.0.1:50056"), "http://127.0.0.1:50056");
  assert.equal(
    publicBootstrapUrl(config({}), "a.example.com:443,b.example.com:443"),
    "https://a.example.com:443",
  );
});
