import assert from "node:assert/strict";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { generateReleaseKey, parsePublicKey } from "../../shared/release/minisign.ts";
import { writeRelease } from "../../shared/release/write_release.ts";
import { VERSION } from "../../shared/version.ts";
import { edgePaths } from "../state/paths.ts";
import { requireManagedDaemon, updateFromDaemon } from "./daemon_update.ts";
import { updateLayout, versionBinary } from "./layout.ts";
import { releasePlatform } from "./platform.ts";
import { switchTo } from "./switch.ts";

const key = generateReleaseKey("daemon_update_test");
const publicKey = () => parsePublicKey(key.publicKeyText);

/** A host whose `current` names `version`, enrolled with a controller at `endpoint`. */
async function host(version: string | undefined, endpoint = "http://127.0.0.1:9") {
  const home = await Deno.makeTempDir({ prefix: "aegis-daemon-update-" });
  const paths = edgePaths(home);
  const layout = updateLayout(paths);
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(paths.config, `cluster:\n  endpoints: ["${endpoint}"]\n`);
  if (version) {
    await Deno.mkdir(join(layout.versions, version), { recursive: true });
    await Deno.writeTextFile(versionBinary(layout, version), `#!/bin/sh\necho ${version}\n`);
    await switchTo(layout, version);
  }
  return { home, paths, layout };
}

async function rejectsWith(code: string, run: () => Promise<unknown>, message: RegExp) {
  await assert.rejects(run, (error) => {
    assert.ok(error instanceof AegisError, String(error));
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("updateFromDaemon() refuses before any network when the daemon is not on the managed path", async () => {
  // install.sh's service runs /usr/local/bin/aegis: a switch of `current` would restart the
  // old binary, and the next upgrade would wrongly say "already at" the new version.
  const { home, paths } = await host(undefined);
  try {
    await rejectsWith(
      "UPDATE_FAILED",
      () => updateFromDaemon({ paths, supervised: true, log: () => {}, publicKey }, {}),
      /does not run the managed binary/,
    );
    // Nothing was adopted, installed or switched.
    assert.equal(await Deno.stat(join(paths.dir, "versions")).catch(() => undefined), undefined);
    assert.equal(await Deno.lstat(join(paths.dir, "current")).catch(() => undefined), undefined);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("requireManagedDaemon(): a compiled binary must run current/aegis, a version it names", async () => {
  const { home, layout } = await host(VERSION);
  try {
    const managed = join(layout.versions, VERSION, "aegis");
    await requireManagedDaemon(layout, { command: [layout.bin], execPath: managed });
    await requireManagedDaemon(layout, { command: [layout.bin], execPath: layout.bin });
    await rejectsWith(
      "UPDATE_FAILED",
      () =>
        requireManagedDaemon(layout, {
          command: ["/usr/local/bin/aegis"],
          execPath: "/usr/local/bin/aegis",
        }),
      /does not run the managed binary/,
    );
    await switchTo(layout, VERSION);
    await Deno.mkdir(join(layout.versions, "9.9.9"));
    await Deno.writeTextFile(versionBinary(layout, "9.9.9"), "");
    await switchTo(layout, "9.9.9");
    // `current` names another version than the one running: its restart would not be this.
    await rejectsWith(
      "UPDATE_FAILED",
      () => requireManagedDaemon(layout, { command: [layout.bin], execPath: layout.bin }),
      /which is 9\.9\.9/,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("updateFromDaemon() never downgrades, even when the fleet request names the version", async () => {
  const releases = await Deno.makeTempDir({ prefix: "aegis-daemon-update-rel-" });
  const older = "0.0.1";
  assert.ok(older < VERSION);
  const artifact = join(releases, "artifact");
  await Deno.writeTextFile(artifact, `#!/bin/sh\necho ${older}\n`);
  const { os, arch } = releasePlatform();
  await writeRelease({
    outDir: releases,
    version: older,
    artifacts: [{ name: "aegis", os, arch, path: artifact }],
    secretKeyText: key.secretKeyText,
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const file = new URL(req.url).pathname.split("/").pop()!;
    const data = await Deno.readFile(join(releases, older, file)).catch(() => undefined);
    return data ? new Response(data) : new Response("no", { status: 404 });
  });
  const { home, paths, layout } = await host(VERSION, `http://127.0.0.1:${server.addr.port}`);
  try {
    // A controller (or whoever took it over) asks for an older, correctly signed release.
    await rejectsWith(
      "UPDATE_FAILED",
      () =>
        updateFromDaemon({
          paths,
          supervised: true,
          log: () => {},
          publicKey,
          self: { command: [layout.bin], execPath: layout.bin },
        }, { version: older }),
      /not downgrading/,
    );
    assert.equal(await Deno.readLink(layout.current), join("versions", VERSION));
    assert.equal(await Deno.stat(join(layout.versions, older)).catch(() => undefined), undefined);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
    await Deno.remove(releases, { recursive: true });
  }
});
