// `deno task build`: a signed release in <out>/<version>/: `aegis` and `aegis-controller` for
// linux, macOS and Windows × x86_64 and arm64, manifest.json with its minisign signature,
// SHA256SUMS and release.pub (see shared/release/write_release.ts). The release public key is
// compiled into the binaries (scripts/build_stage.ts); without a key the build refuses, unless
// --unsigned, whose binaries then refuse self-update.
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AegisError } from "../shared/errors.ts";
import { type Io, processIo, reportError } from "../shared/cli/io.ts";
import { exists, modeOf } from "../shared/fs/atomic.ts";
import { SOURCE_VERSION } from "../shared/version.ts";
import { DAEMON_V8_FLAGS } from "../agent/self.ts";
import {
  artifactFileName,
  type ReleaseArch,
  type ReleaseBinary,
  type ReleaseManifest,
  type ReleaseOs,
  VERSION_PATTERN,
} from "../shared/release/manifest.ts";
import { keyIdHex, parseSecretKey, publicKeyBase64 } from "../shared/release/minisign.ts";
import { type ReleaseArtifactInput, writeRelease } from "../shared/release/write_release.ts";
import { resolveRuntimes } from "./build_runtime.ts";
import { fixtureLauncher, type Stage, writeStage } from "./build_stage.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface Target {
  os: ReleaseOs;
  arch: ReleaseArch;
  triple: string;
}

export const TARGETS: readonly Target[] = [
  { os: "linux", arch: "x86_64", triple: "x86_64-unknown-linux-gnu" },
  { os: "linux", arch: "arm64", triple: "aarch64-unknown-linux-gnu" },
  { os: "macos", arch: "x86_64", triple: "x86_64-apple-darwin" },
  { os: "macos", arch: "arm64", triple: "aarch64-apple-darwin" },
  { os: "windows", arch: "x86_64", triple: "x86_64-pc-windows-msvc" },
  { os: "windows", arch: "arm64", triple: "aarch64-pc-windows-msvc" },
];

const ENTRIES: readonly [ReleaseBinary, string][] = [
  ["aegis", "agent/main.ts"],
  ["aegis-controller", "controller/main.ts"],
];

export interface BuildOptions {
  version: string;
  targets: readonly Target[];
  out: string;
  /** minisign secret key file; required unless `unsigned`. */
  keyFile?: string;
  unsigned: boolean;
  /** Directory of denort-<triple>.zip (or extracted denort-<triple>) for air-gapped builds. */
  runtimeDir?: string;
  /** Write fixture launchers instead of compiling (tests; see build_stage.ts). */
  fixture: boolean;
  replace: boolean;
  root?: string;
}

export interface BuildResult {
  dir: string;
  manifest: ReleaseManifest;
  releaseKeyId?: string;
  seconds: number;
}

export async function build(options: BuildOptions, log: (line: string) => void) {
  const started = performance.now();
  const root = options.root ?? ROOT;
  const secretKeyText = await loadKey(options, log);
  const secretKey = secretKeyText === null ? undefined : parseSecretKey(secretKeyText);
  const finalDir = join(options.out, options.version);
  // writeRelease refuses too, but only after every target compiled; say it before.
  if (!options.replace && await exists(finalDir)) {
    throw new AegisError("CONFLICT", `${finalDir} already exists`, {
      hint: "A release version is built once: bump --version, or pass --replace.",
    });
  }
  const builtAt = buildTime();
  const stage = await writeStage(root, options.out, {
    version: options.version,
    releasePublicKey: secretKey ? publicKeyBase64(secretKey.public) : null,
    builtAt: builtAt.toISOString(),
  });
  let manifest: ReleaseManifest;
  try {
    const artifacts = options.fixture
      ? await writeFixtures(options, stage, root)
      : await compileAll(options, stage, root, log);
    manifest = await writeRelease({
      outDir: options.out,
      version: options.version,
      artifacts,
      secretKeyText,
      createdAt: builtAt,
      replace: options.replace,
    });
  } finally {
    // The release holds its own copies. Fixture launchers still need the staged module and
    // import map; compiled binaries carry theirs, so then the whole stage goes (runtimes too).
    await Deno.remove(options.fixture ? stage.binDir : stage.dir, { recursive: true });
  }
  return {
    dir: finalDir,
    manifest,
    releaseKeyId: secretKey ? keyIdHex(secretKey.public.keyId) : undefined,
    seconds: (performance.now() - started) / 1000,
  } satisfies BuildResult;
}

/** SOURCE_DATE_EPOCH (reproducible builds) when set, else now. */
function buildTime(): Date {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  if (epoch === undefined) return new Date();
  if (!/^\d{1,12}$/.test(epoch)) {
    throw new AegisError("INVALID_ARGUMENT", `SOURCE_DATE_EPOCH="${epoch}" is not seconds`);
  }
  return new Date(Number(epoch) * 1000);
}

async function loadKey(options: BuildOptions, log: (line: string) => void) {
  if (options.unsigned) {
    if (options.keyFile) {
      throw new AegisError("INVALID_ARGUMENT", "--unsigned and a release key contradict");
    }
    log("! --unsigned: no release key is compiled in; these binaries refuse self-update");
    return null;
  }
  if (!options.keyFile) {
    throw new AegisError(
      "RELEASE_BUILD_FAILED",
      "no release key: a release build signs its manifest and compiles the key into `aegis`",
      {
        hint:
          "Pass --key FILE (or set AEGIS_RELEASE_KEY_FILE); make one with `deno task release:keygen --out DIR`. Or pass --unsigned for binaries that refuse self-update.",
      },
    );
  }
  const mode = await modeOf(options.keyFile);
  if (mode !== undefined && (mode & 0o077) !== 0) {
    log(`! ${options.keyFile} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
  }
  try {
    return await Deno.readTextFile(options.keyFile);
  } catch (error) {
    throw new AegisError("RELEASE_KEY_INVALID", `cannot read ${options.keyFile}: ${error}`);
  }
}

async function writeFixtures(options: BuildOptions, stage: Stage, root: string) {
  const denoDir = await denoDirOf();
  return await eachArtifact(options, stage, async (name, entry, target, path) => {
    const text = fixtureLauncher({
      name,
      version: options.version,
      target: `${target.os}-${target.arch}`,
      deno: Deno.execPath(),
      denoDir,
      config: join(root, "deno.json"),
      importMap: stage.importMap,
      entry: join(root, entry),
    });
    await Deno.writeTextFile(path, text, { mode: 0o755 });
  });
}

async function compileAll(
  options: BuildOptions,
  stage: Stage,
  root: string,
  log: (line: string) => void,
) {
  const runtimes = options.runtimeDir
    ? await resolveRuntimes(options.runtimeDir, options.targets.map((t) => t.triple), stage.dir)
    : undefined;
  return await eachArtifact(options, stage, async (name, entry, target, path) => {
    await compileOne(root, stage, target, entry, path, runtimes?.get(target.triple));
    log(`✔ ${name} ${target.os}-${target.arch} (${(await Deno.stat(path)).size} bytes)`);
  });
}

/**
 * Every binary for every target, one after another: `make` writes the file at its release path
 * under the stage's bin directory, and the artifacts come back in that order.
 */
async function eachArtifact(
  options: BuildOptions,
  stage: Stage,
  make: (
    name: ReleaseBinary,
    entry: string,
    target: Target,
    path: string,
  ) => Promise<void>,
): Promise<ReleaseArtifactInput[]> {
  const artifacts: ReleaseArtifactInput[] = [];
  for (const target of options.targets) {
    for (const [name, entry] of ENTRIES) {
      const path = join(
        stage.binDir,
        artifactFileName(name, options.version, target.os, target.arch),
      );
      await make(name, entry, target, path);
      artifacts.push({ name, os: target.os, arch: target.arch, path });
    }
  }
  return artifacts;
}

async function compileOne(
  root: string,
  stage: Stage,
  target: Target,
  entry: string,
  output: string,
  runtime: string | undefined,
): Promise<void> {
  // An inherited DENORT_BIN would be used for every target; only ours is passed on.
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  if (runtime) env.DENORT_BIN = runtime;
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "-A",
      // Embed only the npm packages each binary reaches (from the global npm cache): with the
      // checkout's node_modules/ directory, deno compile embeds all of it (~180 MB, buf included).
      "--node-modules-dir=none",
      "--exclude-unused-npm",
      // `aegis` is also the long-running daemon: see DAEMON_V8_FLAGS for why it runs without Maglev.
      ...(entry === "agent/main.ts" ? [`--v8-flags=${DAEMON_V8_FLAGS}`] : []),
      "--target",
      target.triple,
      "--config",
      join(root, "deno.json"),
      "--import-map",
      stage.importMap,
      "--output",
      output,
      join(root, entry),
    ],
    cwd: root,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (result.success) return;
  // Deno's error chain, without the (empty) backtrace it appends.
  const stderr = new TextDecoder().decode(result.stderr).split("Stack backtrace:")[0].trim();
  const download = !runtime && /denort|dl\.deno\.land|download|error sending request|dns/i
    .test(stderr);
  throw new AegisError(
    "RELEASE_BUILD_FAILED",
    `deno compile ${entry} for ${target.triple} failed:\n${
      stderr.split("\n").slice(-8).join("\n")
    }`,
    {
      hint: download
        ? `deno compile could not download the Deno runtime; on a machine without internet pass --runtime-dir DIR holding denort-${target.triple}.zip for Deno ${Deno.version.deno}.`
        : "",
    },
  );
}

async function denoDirOf(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

const USAGE = `usage: deno task build [--version V] [--target OS-ARCH]... [--key FILE | --unsigned]
                       [--runtime-dir DIR] [--fixture] [--out DIR] [--replace]

  --version V        release version (default ${SOURCE_VERSION})
  --target OS-ARCH   ${TARGETS.map((t) => `${t.os}-${t.arch}`).join(", ")} (default: all)
  --key FILE         minisign secret key (unencrypted); or AEGIS_RELEASE_KEY_FILE
  --unsigned         no key: the binaries refuse self-update, the release has no signature
  --runtime-dir DIR  denort-<triple>.zip (or extracted denort-<triple>) per target, offline
  --fixture          sh launchers that \`deno run\` the entry points, instead of compiling (tests)
  --out DIR          releases directory (default dist); writes DIR/<version>/
  --replace          overwrite an existing DIR/<version>/
`;

export function parseBuildArgs(args: string[], env: Record<string, string | undefined>) {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      version: { type: "string", default: SOURCE_VERSION },
      target: { type: "string", multiple: true },
      key: { type: "string" },
      unsigned: { type: "boolean", default: false },
      "runtime-dir": { type: "string" },
      fixture: { type: "boolean", default: false },
      out: { type: "string", default: "dist" },
      replace: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (!VERSION_PATTERN.test(values.version)) {
    throw new AegisError("INVALID_ARGUMENT", `--version "${values.version}" is not 1.2.3[-pre]`);
  }
  const targets = (values.target ?? TARGETS.map((t) => `${t.os}-${t.arch}`)).map((name) => {
    const target = TARGETS.find((t) => `${t.os}-${t.arch}` === name);
    if (!target) {
      throw new AegisError("INVALID_ARGUMENT", `--target ${name} is not one of the six targets`, {
        hint: `Targets: ${TARGETS.map((t) => `${t.os}-${t.arch}`).join(", ")}`,
      });
    }
    return target;
  });
  const options: BuildOptions = {
    version: values.version,
    targets: [...new Set(targets)],
    out: values.out,
    keyFile: values.key ?? (values.unsigned ? undefined : env.AEGIS_RELEASE_KEY_FILE),
    unsigned: values.unsigned,
    runtimeDir: values["runtime-dir"],
    fixture: values.fixture,
    replace: values.replace,
  };
  return { options, help: values.help };
}

export async function main(args: string[], io: Io): Promise<number> {
  try {
    const { options, help } = parseBuildArgs(args, Deno.env.toObject());
    if (help) {
      io.out(USAGE);
      return 0;
    }
    const result = await build(options, (line) => io.err(`${line}\n`));
    const key = result.releaseKeyId ? `signed by release key ${result.releaseKeyId}` : "UNSIGNED";
    io.err(
      `release ${options.version}: ${result.manifest.artifacts.length} artifacts, ${key}, ` +
        `${result.seconds.toFixed(1)}s${options.fixture ? " (fixture launchers)" : ""}\n`,
    );
    io.out(`${result.dir}\n`);
    return 0;
  } catch (error) {
    if (error instanceof TypeError && "code" in error) {
      io.err(`✖ ${error.message}\n${USAGE}`);
      return 2;
    }
    return reportError(io, error);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args, processIo));
