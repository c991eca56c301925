// `deno task build` end to end, as real processes. `deno compile` cannot fetch its runtime on
// these machines, so most builds here are --fixture builds (sh launchers that `deno run` the
// entry points with the build's import map); one compiles for this machine with the local
// `deno` binary standing in for denort, which proves the runtime-dir path and that the key is
// compiled in, though the result runs as plain deno (denort is what makes it run the program).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { keyIdHex, parsePublicKey, publicKeyBase64 } from "../../shared/release/minisign.ts";
import { readVerifiedManifest } from "../../shared/release/read_manifest.ts";
import { extractZipEntry } from "../../scripts/build_runtime.ts";
import { ROOT, runDeno } from "../support/processes.ts";

const BUILD = join(ROOT, "scripts/build.ts");
const KEYGEN = join(ROOT, "scripts/release_keygen.ts");
const MINISIGN = ["/usr/bin/minisign", "/usr/local/bin/minisign"].find((p) => existsSync(p));
const SHA256SUM = ["/usr/bin/sha256sum", "/bin/sha256sum"].find((p) => existsSync(p));
const PYTHON = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p));
const posix = Deno.build.os !== "windows";
const HOST = hostTarget();

function hostTarget() {
  const os = { linux: "linux", darwin: "macos", windows: "windows" }[Deno.build.os as string];
  const arch = { x86_64: "x86_64", aarch64: "arm64" }[Deno.build.arch as string];
  return os && arch ? { name: `${os}-${arch}`, exe: os === "windows" ? ".exe" : "" } : undefined;
}

async function exec(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  const out = await new Deno.Command(cmd, { args, ...options, stdout: "piped", stderr: "piped" })
    .output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

async function withTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "aegis-build-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** scripts/build.ts signing with `keyFile`, compiling with the runtimes in `runtimes`. */
function buildWithRuntimes(
  keyFile: string,
  runtimes: string,
  targets: string[],
  { version, out }: { version: string; out: string },
) {
  return runDeno(BUILD, [
    "--key",
    keyFile,
    "--runtime-dir",
    runtimes,
    ...targets.flatMap((target) => ["--target", target]),
    "--version",
    version,
    "--out",
    out,
  ]);
}

async function keygen(dir: string) {
  const made = await runDeno(KEYGEN, ["--out", join(dir, "keys")]);
  assert.equal(made.code, 0, made.stderr);
  const publicKeyText = await Deno.readTextFile(join(dir, "keys", "release.pub"));
  return { keyFile: join(dir, "keys", "release.key"), publicKeyText };
}

Deno.test({
  name: "release:keygen writes release.key 0600 and refuses to overwrite it",
  ignore: !posix, // checks POSIX file modes (0600)
  async fn() {
    await withTemp(async (dir) => {
      const { keyFile, publicKeyText } = await keygen(dir);
      assert.equal((await Deno.stat(keyFile)).mode! & 0o777, 0o600);
      assert.match(publicKeyText, /^untrusted comment: minisign public key [0-9A-F]{16}\n/);
      const again = await runDeno(KEYGEN, ["--out", join(dir, "keys")]);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /already exists/);
      assert.equal(await Deno.readTextFile(join(dir, "keys", "release.pub")), publicKeyText);
    });
  },
});

Deno.test({
  name: "a --fixture build is signed, checks with minisign and sha256sum, and reports its key",
  ignore: !posix || !HOST, // sh launchers and file modes; a release target for this machine
  async fn() {
    await withTemp(async (dir) => {
      const { keyFile, publicKeyText } = await keygen(dir);
      const out = join(dir, "dist");
      const started = performance.now();
      const built = await runDeno(BUILD, ["--fixture", "--version", "3.4.5", "--out", out], {
        AEGIS_RELEASE_KEY_FILE: keyFile,
      });
      const seconds = (performance.now() - started) / 1000;
      assert.equal(built.code, 0, built.stderr);
      assert.equal(built.stdout.trim(), join(out, "3.4.5"));
      console.log(`fixture build (12 launchers, signed): ${seconds.toFixed(2)}s`);
      const release = join(out, "3.4.5");

      const manifest = readVerifiedManifest(
        await Deno.readFile(join(release, "manifest.json")),
        await Deno.readTextFile(join(release, "manifest.json.minisig")),
        publicKeyText,
      );
      assert.equal(manifest.artifacts.length, 12);
      assert.deepEqual(
        new Set(manifest.artifacts.map((a) => `${a.name}/${a.os}/${a.arch}`)).size,
        12,
      );
      if (MINISIGN) {
        const pub = publicKeyText.split("\n")[1];
        const checked = await exec(MINISIGN, ["-Vm", "manifest.json", "-P", pub], { cwd: release });
        assert.equal(checked.code, 0, checked.stderr);
        assert.match(checked.stdout, /Trusted comment: .*file:manifest.json\tversion:3.4.5/);
      }
      if (SHA256SUM) {
        const checked = await exec(SHA256SUM, ["-c", "SHA256SUMS"], { cwd: release });
        assert.equal(checked.code, 0, checked.stderr);
        assert.equal(checked.stdout.trim().split("\n").length, 13);
      }

      // The launcher for this machine runs the real CLI with the build's version and key,
      // from another directory and HOME, as install.sh runs it.
      const keyId = keyIdHex(parsePublicKey(publicKeyText).keyId);
      const aegis = join(release, `aegis-3.4.5-${HOST!.name}${HOST!.exe}`);
      assert.match(await Deno.readTextFile(aegis), /TEST FIXTURE, not a real binary/);
      const env = { HOME: dir, PATH: "/usr/bin:/bin" };
      const version = await exec(aegis, ["--version"], { cwd: dir, env });
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout, `3.4.5 (release key ${keyId})\n`);
      const controller = join(release, `aegis-controller-3.4.5-${HOST!.name}${HOST!.exe}`);
      const controllerVersion = await exec(controller, ["--version"], { cwd: dir, env });
      assert.equal(controllerVersion.stdout.trim(), "3.4.5");
    });
  },
});

Deno.test({
  name: "a build without a key is refused unless --unsigned, whose binaries refuse updates",
  ignore: !posix || !HOST, // sh launchers and file modes; a release target for this machine
  async fn() {
    await withTemp(async (dir) => {
      const out = join(dir, "dist");
      const refused = await runDeno(BUILD, ["--fixture", "--version", "1.0.0", "--out", out], {
        AEGIS_RELEASE_KEY_FILE: "",
      });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /no release key/);
      assert.match(refused.stderr, /--key FILE.*--unsigned/s);
      assert.equal(existsSync(join(out, "1.0.0")), false);

      const unsigned = await runDeno(BUILD, [
        "--fixture",
        "--unsigned",
        "--target",
        HOST!.name,
        "--version",
        "1.0.0",
        "--out",
        out,
      ]);
      assert.equal(unsigned.code, 0, unsigned.stderr);
      assert.match(unsigned.stderr, /refuse self-update/);
      const release = join(out, "1.0.0");
      assert.equal(existsSync(join(release, "manifest.json.minisig")), false);
      const version = await exec(join(release, `aegis-1.0.0-${HOST!.name}${HOST!.exe}`), [
        "--version",
      ]);
      assert.equal(version.stdout, "1.0.0 (unsigned build: no release key, self-update refused)\n");
    });
  },
});

Deno.test("a missing runtime archive is named by its exact path, and nothing is built", async () => {
  await withTemp(async (dir) => {
    const { keyFile } = await keygen(dir);
    const runtimes = join(dir, "runtimes");
    await Deno.mkdir(runtimes);
    // One target present (as an extracted binary), one missing.
    await Deno.writeTextFile(join(runtimes, "denort-x86_64-unknown-linux-gnu"), "not used");
    const out = join(dir, "dist");
    const built = await buildWithRuntimes(keyFile, runtimes, ["linux-x86_64", "windows-arm64"], {
      version: "2.0.0",
      out,
    });
    assert.notEqual(built.code, 0);
    assert.ok(
      built.stderr.includes(join(runtimes, "denort-aarch64-pc-windows-msvc.zip")),
      built.stderr,
    );
    assert.doesNotMatch(built.stderr, /x86_64-unknown-linux-gnu/);
    assert.match(built.stderr, new RegExp(`Deno ${Deno.version.deno.replaceAll(".", "\\.")}`));
    assert.equal(existsSync(join(out, "2.0.0")), false);
  });
});

Deno.test({
  name: "extractZipEntry() reads denort out of a stored or deflated archive",
  ignore: !PYTHON, // python3 writes the zip archives this reads
  async fn() {
    await withTemp(async (dir) => {
      const payload = new Uint8Array(200_000).map((_, i) => (i * 7) % 251);
      await Deno.writeFile(join(dir, "denort"), payload);
      for (const method of ["ZIP_STORED", "ZIP_DEFLATED"]) {
        const zip = join(dir, `${method}.zip`);
        const script =
          `import zipfile;z=zipfile.ZipFile(${JSON.stringify(zip)},"w",zipfile.${method});` +
          `z.write(${JSON.stringify(join(dir, "denort"))},"denort");z.close()`;
        const made = await exec(PYTHON!, ["-c", script]);
        assert.equal(made.code, 0, made.stderr);
        const bytes = await Deno.readFile(zip);
        assert.deepEqual(extractZipEntry(bytes, "denort", zip), payload);
        assert.throws(() => extractZipEntry(bytes, "denort.exe", zip), /holds no denort.exe/);
        assert.throws(() => extractZipEntry(bytes.subarray(0, 1000), "denort", zip), /zip/);
      }
    });
  },
});

Deno.test({
  name: "a --runtime-dir compile for this machine compiles the release key in",
  // POSIX file modes and a release target for this machine; no Windows runtime to compile with.
  ignore: !posix || !HOST || HOST.name === "windows-x86_64",
  async fn() {
    await withTemp(async (dir) => {
      const { keyFile, publicKeyText } = await keygen(dir);
      const triple = Deno.build.target;
      const runtimes = join(dir, "runtimes");
      await Deno.mkdir(runtimes);
      // Stand-in runtime: this deno (a real executable for this target, which deno compile can
      // inject into); a genuine denort-<triple>.zip is what a real build uses.
      await Deno.symlink(Deno.execPath(), join(runtimes, `denort-${triple}`));
      const out = join(dir, "dist");
      const built = await buildWithRuntimes(keyFile, runtimes, [HOST!.name], {
        version: "4.0.0",
        out,
      });
      assert.equal(built.code, 0, built.stderr);
      const release = join(out, "4.0.0");
      const manifest = readVerifiedManifest(
        await Deno.readFile(join(release, "manifest.json")),
        await Deno.readTextFile(join(release, "manifest.json.minisig")),
        publicKeyText,
      );
      const runtimeSize = (await Deno.stat(Deno.execPath())).size;
      for (const artifact of manifest.artifacts) {
        console.log(
          `${artifact.file}: ${artifact.size} bytes, payload ${
            ((artifact.size - runtimeSize) / 1e6).toFixed(1)
          } MB over the runtime`,
        );
      }
      const binary = await Deno.readFile(join(release, `aegis-4.0.0-${HOST!.name}${HOST!.exe}`));
      const text = new TextDecoder("latin1").decode(binary);
      const keyLine = publicKeyBase64(parsePublicKey(publicKeyText));
      assert.ok(text.includes(`"releasePublicKey": "${keyLine}"`), "release key compiled in");
      assert.ok(text.includes(`"version": "4.0.0"`));
      assert.ok(
        !text.includes("EMBEDDED_BUILD: EmbeddedBuild | null = null"),
        "source stub left out",
      );
      // Only reachable npm packages are embedded (not the checkout's whole node_modules/).
      assert.ok(!text.includes("@bufbuild/buf-linux"), "buf's binary is not embedded");
      // The web console's assets are text imports: compiled into the controller, read from
      // nowhere at run time.
      const controller = new TextDecoder("latin1").decode(
        await Deno.readFile(join(release, `aegis-controller-4.0.0-${HOST!.name}${HOST!.exe}`)),
      );
      assert.ok(controller.includes("AEGIS Edge console: one stylesheet"), "console.css embedded");
      assert.ok(controller.includes("htmx:afterSettle"), "console.js embedded");
      assert.ok(controller.includes("htmx-config"), "htmx embedded");
    });
  },
});
