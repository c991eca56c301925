// install.sh end to end: a real controller serves a signed release; `curl … | sh` (or wget) runs
// under a fresh HOME with a PATH holding only the tools each case allows.
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { ROOT } from "../support/processes.ts";
import { install, removeHomes, versionOf } from "./run_install.ts";
import { artifactPath, makeReleaseFixture, type ReleaseFixture } from "./release_fixture.ts";
import { forgeRelease } from "./forged_release.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
interface Site {
  fixture: ReleaseFixture;
  controller: ControllerProcess;
  url: string;
}

async function withSite(
  test: (site: Site) => Promise<void>,
  setup?: (f: ReleaseFixture) => Promise<void>,
) {
  const fixture = await makeReleaseFixture();
  await setup?.(fixture);
  const controller = await startControllerProcess({
    yaml: `bootstrap:\n  releases_dir: "${fixture.releasesDir}"`,
  });
  try {
    await test({ fixture, controller, url: `http://127.0.0.1:${controller.port}` });
  } finally {
    await controller.stop();
    await fixture.cleanup();
    await removeHomes();
  }
}

Deno.test(
  "install.sh: curl | sh installs into ~/.local/bin, minisign checks the signature",
  opts,
  async () => {
    await withSite(async ({ fixture, url }) => {
      const run = await install(url, { tools: ["curl", "minisign"] });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /manifest signature verified \(minisign\)/);
      assert.match(run.stderr, /SHA-256 of aegis-.*-linux-x86_64 matches the manifest/);
      assert.match(run.stderr, /\.local\/bin is not on your PATH/);
      assert.deepEqual(run.installed, ["aegis"]);
      assert.deepEqual(run.leftovers, []);
      assert.match(
        await versionOf(join(run.installDir, "aegis")),
        new RegExp(`^${fixture.version}\\b`),
      );
      console.log(`install time (curl | sh, minisign, local controller): ${run.ms.toFixed(0)} ms`);
    });
  },
);

Deno.test("install.sh: with only wget on PATH, OpenSSL 3 checks the signature", opts, async () => {
  await withSite(async ({ fixture, url }) => {
    const run = await install(url, { tools: ["wget", "openssl"], downloader: "wget" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /manifest signature verified \(openssl\)/);
    assert.deepEqual(run.installed, ["aegis"]);
    assert.deepEqual(run.leftovers, []);
    assert.match(
      await versionOf(join(run.installDir, "aegis")),
      new RegExp(`^${fixture.version}\\b`),
    );
    console.log(`install time (wget | sh, openssl, local controller): ${run.ms.toFixed(0)} ms`);
  });
});

Deno.test(
  "install.sh: without minisign or OpenSSL it refuses, unless told SHA-256 only",
  opts,
  async () => {
    await withSite(async ({ url }) => {
      const refused = await install(url, { tools: ["curl"] });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /neither minisign nor OpenSSL >= 3 is installed/);
      assert.match(refused.stderr, /AEGIS_INSECURE_SHA256_ONLY=1/);
      assert.deepEqual(refused.installed, []);
      assert.deepEqual(refused.leftovers, []);

      const warned = await install(url, {
        tools: ["curl"],
        env: { AEGIS_INSECURE_SHA256_ONLY: "1" },
      });
      assert.equal(warned.code, 0, warned.stderr);
      assert.match(warned.stderr, /WARNING: NEITHER minisign NOR OpenSSL 3 IS INSTALLED/);
      assert.deepEqual(warned.installed, ["aegis"]);
    });
  },
);

Deno.test("install.sh: a tampered binary is refused and nothing is installed", opts, async () => {
  await withSite(async ({ fixture, url }) => {
    const binary = artifactPath(fixture, "linux", "x86_64");
    const bytes = await Deno.readFile(binary);
    bytes[bytes.length - 2] ^= 0x20; // same size, other content
    await Deno.writeFile(binary, bytes);
    for (const tools of [["curl", "minisign"], ["curl", "openssl"]]) {
      const run = await install(url, { tools });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /SHA-256 mismatch for aegis-/);
      assert.deepEqual(run.installed, []);
      assert.deepEqual(run.leftovers, []);
    }
  });
});

Deno.test(
  "install.sh: a manifest changed after signing is refused and nothing is installed",
  opts,
  async () => {
    await withSite(async ({ fixture, url }) => {
      // The controller checks its release before serving it; an edited manifest is not served.
      const path = join(fixture.releasesDir, fixture.version, "manifest.json");
      await Deno.writeTextFile(
        path,
        (await Deno.readTextFile(path)).replace(/"[0-9a-f]{64}"/, `"${"0".repeat(64)}"`),
      );
      const run = await install(url, { tools: ["curl", "openssl"] });
      // `curl -f … | sh`: curl fails, and sh runs nothing.
      assert.match(run.stderr, /returned error: 500/);
      assert.deepEqual(run.installed, []);
      assert.deepEqual(run.leftovers, []);
      // Without -f the body itself is a script that says why and exits non-zero.
      const body = await (await fetch(`${url}/install.sh`)).text();
      assert.match(body, /^echo 'aegis-controller: the served release is unusable/);
      assert.match(body, /\nexit 1\n$/);
    });
  },
);

Deno.test(
  "install.sh: a release re-signed by another key is refused against the pinned key",
  opts,
  async () => {
    let pinned = "";
    await withSite(async ({ url }) => {
      for (const tools of [["curl", "minisign"], ["curl", "openssl"]]) {
        const run = await install(url, { tools, env: { AEGIS_RELEASE_PUBKEY: pinned } });
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stderr, /signature does not verify/);
        assert.deepEqual(run.installed, []);
        assert.deepEqual(run.leftovers, []);
      }
    }, async (fixture) => {
      pinned = fixture.publicKey;
      await forgeRelease(fixture, "#!/bin/sh\necho pwned\n");
    });
  },
);

Deno.test(
  "install.sh: AEGIS_TOKEN (the one-liner's form) and --token go on to `aegis edge enroll` on standard input",
  opts,
  async () => {
    await withSite(async ({ controller, url }) => {
      const { token } = await controller.issueEnrollment("team-a");
      const ways: { env: Record<string, string>; args: string[] }[] = [
        { env: { AEGIS_TOKEN: token }, args: [] },
        { env: {}, args: ["--token", token] },
      ];
      for (const how of ways) {
        const run = await install(url, {
          tools: ["curl", "openssl"],
          env: how.env,
          args: [...how.args, "--", "--dry-run", "--non-interactive"],
        });
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stderr, /enrolling this host/);
        assert.match(run.stderr, /Bootstrap plan/);
      }
    });
  },
);

Deno.test("install.sh: shellcheck and dash -n are clean, the whole script is one function", async () => {
  const script = join(ROOT, "installers", "install.sh");
  for (const [program, args] of [["shellcheck", [script]], ["dash", ["-n", script]]] as const) {
    const out = await new Deno.Command(program, {
      args: [...args],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `${program}: ${text}`);
  }
  const lines = (await Deno.readTextFile(script)).trimEnd().split("\n");
  assert.equal(lines.at(-1), 'aegis_install "$@"');
  // Nothing but comments and function definitions runs before that last line.
  const topLevel = lines.slice(0, -1).filter((l) => /^[^\s#}]/.test(l) && !/^\w+\(\) \{/.test(l));
  assert.deepEqual(topLevel, []);
});

Deno.test(
  "install.sh: AEGIS_VERSION picks a release; an unknown or malformed one installs nothing",
  opts,
  async () => {
    await withSite(async ({ fixture, url }) => {
      const pinned = await install(url, {
        tools: ["curl", "openssl"],
        env: { AEGIS_VERSION: fixture.version },
      });
      assert.equal(pinned.code, 0, pinned.stderr);
      assert.match(pinned.stderr, new RegExp(`release ${fixture.version} for linux/x86_64`));
      const unknown = await install(url, {
        tools: ["curl", "openssl"],
        env: { AEGIS_VERSION: "9.9.9" },
      });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /download failed: .*\/releases\/9\.9\.9\/manifest\.json/);
      assert.deepEqual(unknown.installed, []);
      const malformed = await install(url, {
        tools: ["curl", "openssl"],
        env: { AEGIS_VERSION: "../x" },
      });
      assert.equal(malformed.code, 1);
      assert.match(malformed.stderr, /not a release version/);
      assert.deepEqual(malformed.leftovers, []);
    });
  },
);
