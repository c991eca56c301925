// End to end: `aegis update` against a real controller serving signed fixture releases, with a
// real daemon under a supervisor. A good release is switched to and reconnects; a release signed
// by another key, or whose binary does not match its hash, is refused with nothing changed; a
// release whose daemon cannot connect is rolled back, by the command or by the daemon alone.
import assert from "node:assert/strict";
import { join } from "node:path";
import { AGENT_MAIN, eventually, type Output, runDeno } from "../support/processes.ts";
import { readMarker } from "../../agent/update/marker.ts";
import { buildLauncher, buildTaskRelease, releaseKey, signRelease } from "./fixture_release.ts";
import type { UpdateHost } from "./support.ts";
import { goodRelease, NEW, OLD, type Scene, scene, teardown, unreachableRelease } from "./scene.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** `aegis edge hosts list` as the operator runs it: JSON entries, or the text output. */
async function hostsList(s: Scene): Promise<Array<Record<string, unknown>>>;
async function hostsList(s: Scene, format: "text"): Promise<Output>;
async function hostsList(s: Scene, format = "json") {
  const out = await runDeno(AGENT_MAIN, ["edge", "hosts", "list", "--output", format], {
    HOME: s.work,
    AEGIS_ENDPOINT: s.controller.endpoint,
    AEGIS_TOKEN: await s.controller.operatorToken("team-a"),
  });
  assert.equal(out.code, 0, out.stderr);
  return format === "json" ? JSON.parse(out.stdout) : out;
}

/** What must not change when an update is refused. */
async function snapshot(host: UpdateHost) {
  const state = await host.state();
  return {
    installed: await host.installed(),
    pid: state?.pid,
    version: state?.version,
    marker: await readMarker(join(host.dir, "update.json")),
  };
}

Deno.test(
  "aegis update switches to a good release and the new daemon reconnects",
  opts,
  async () => {
    const s = await scene(goodRelease);
    try {
      const check = await s.host.aegis(["update", "--check", "--output", "json"]);
      assert.equal(check.code, 0, check.stderr);
      assert.deepEqual(JSON.parse(check.stdout).status, "available");

      // Before: `hosts list` shows the old version, behind the served release.
      assert.deepEqual(
        (await hostsList(s)).map((h) => [h.agent_version, h.behind_release]),
        [[OLD, true]],
      );
      const text = await hostsList(s, "text");
      assert.match(text.stdout, /1\.0\.0 \(behind\)/);
      assert.match(text.stderr, /1 host\(s\) behind the served release 1\.1\.0/);

      const before = await s.host.state();
      const started = Date.now();
      const out = await s.host.aegis(["update", "--deadline", "60s", "--output", "json"]);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}\n${s.host.supervisor.stderr}`);
      const result = JSON.parse(out.stdout);
      assert.equal(result.status, "updated");
      assert.deepEqual([result.from, result.to, result.restart], [OLD, NEW, "signal"]);
      console.log(
        `update ${OLD} → ${NEW}: ${seconds.toFixed(1)}s in all, reconnected ` +
          `${result.connect_secs}s after the switch`,
      );

      const after = await s.host.state();
      assert.equal(after?.status, "connected");
      assert.equal(after?.version, NEW);
      assert.notEqual(after?.pid, before?.pid);
      assert.deepEqual(await s.host.installed(), {
        current: join("versions", NEW),
        versions: [OLD, NEW],
      });
      // The new daemon confirmed the update: no marker is left for a later start to act on.
      assert.equal(await readMarker(join(s.host.dir, "update.json")), undefined);
      // The controller records the new version; `hosts list` no longer marks the host behind.
      const listed = await eventually(async () => {
        const host = (await hostsList(s))[0];
        return host.agent_version === NEW ? host : undefined;
      }, "hosts list to show the new version");
      assert.equal(listed.behind_release, false);
      // The same version again is not installed over itself: no restart loop.
      const again = await s.host.aegis(["update", "--output", "json"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).status, "current");
      assert.equal((await s.host.state())?.pid, after?.pid);
    } finally {
      await teardown(s);
    }
  },
);

Deno.test(
  "aegis update refuses a release signed by another key; nothing changes",
  opts,
  async () => {
    const s = await scene(async (releases, work) => {
      const other = releaseKey();
      await signRelease(
        releases,
        NEW,
        await buildLauncher(work, { version: NEW, key: other }),
        other,
      );
    });
    try {
      const before = await snapshot(s.host);
      const out = await s.host.aegis(["update", "--output", "json"]);
      assert.equal(out.code, 77, out.stdout + out.stderr);
      assert.equal(JSON.parse(out.stdout).error.code, "RELEASE_SIGNATURE_INVALID");
      assert.deepEqual(await snapshot(s.host), before);
    } finally {
      await teardown(s);
    }
  },
);

Deno.test(
  "aegis update refuses a binary that does not match the manifest's hash",
  opts,
  async () => {
    const s = await scene(async (releases, work, key) => {
      const manifest = await signRelease(
        releases,
        NEW,
        await buildLauncher(work, { version: NEW, key }),
        key,
      );
      // Same size, other bytes: only the SHA-256 can tell.
      const file = join(releases, NEW, manifest.artifacts[0].file);
      const bytes = await Deno.readFile(file);
      bytes[bytes.length - 2] ^= 0x01;
      await Deno.writeFile(file, bytes);
    });
    try {
      const before = await snapshot(s.host);
      const out = await s.host.aegis(["update", "--output", "json"]);
      assert.equal(out.code, 77, out.stdout + out.stderr);
      const error = JSON.parse(out.stdout).error;
      assert.equal(error.code, "RELEASE_SIGNATURE_INVALID");
      assert.match(error.message, /does not match the signed manifest/);
      assert.deepEqual(await snapshot(s.host), before);
    } finally {
      await teardown(s);
    }
  },
);

Deno.test("a build without a release key refuses to update (fail-closed)", opts, async () => {
  const s = await scene(goodRelease, null);
  try {
    const before = await snapshot(s.host);
    const out = await s.host.aegis(["update", "--output", "json"]);
    assert.equal(out.code, 78, out.stdout + out.stderr);
    assert.equal(JSON.parse(out.stdout).error.code, "RELEASE_KEY_MISSING");
    assert.deepEqual(await snapshot(s.host), before);
  } finally {
    await teardown(s);
  }
});

Deno.test("a release whose daemon cannot connect is rolled back", opts, async () => {
  const s = await scene(unreachableRelease);
  try {
    const before = await s.host.state();
    const started = Date.now();
    const out = await s.host.aegis(["update", "--deadline", "8s", "--output", "json"]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(out.code, 75, `${out.stdout}\n${out.stderr}\n${s.host.supervisor.stderr}`);
    const error = JSON.parse(out.stdout).error;
    assert.equal(error.code, "UPDATE_ROLLED_BACK");
    assert.equal(error.details.previous_connected, "yes");
    console.log(
      `rollback ${NEW} → ${OLD}: ${seconds.toFixed(1)}s in all; the old version ` +
        `connected again ${error.details.rollback_secs}s after the switch (deadline 8s)`,
    );
    const after = await s.host.waitConnected(OLD, before?.pid);
    assert.equal(after.version, OLD);
    assert.equal((await s.host.installed()).current, join("versions", OLD));
    assert.equal((await readMarker(join(s.host.dir, "update.json")))?.state, "rolled_back");
  } finally {
    await teardown(s);
  }
});

Deno.test(
  "with nobody waiting, the new daemon rolls itself back at the deadline",
  opts,
  async () => {
    const s = await scene(unreachableRelease);
    try {
      const before = await s.host.state();
      // The update is cut off right after the switch: only the marker and the daemon remain.
      const child = new Deno.Command(s.host.bin, {
        args: ["update", "--deadline", "6s"],
        env: { NO_COLOR: "1", ...s.host.env },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let log = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        log += decoder.decode(chunk);
        // Cut off once it has signalled the daemon: the switch and the restart are done.
        if (/stopping the daemon/.test(log)) break;
      }
      child.kill("SIGKILL");
      await child.status;
      const switched = Date.now();
      await eventually(
        () =>
          Promise.resolve(
            s.host.supervisor.stderr.includes(`pid ${before?.pid} exited`) || undefined,
          ),
        "the old daemon to stop",
      );
      assert.match(log, new RegExp(`switched to ${NEW.replaceAll(".", "\\.")}`));
      const after = await s.host.waitConnected(OLD, before?.pid, 45_000);
      console.log(
        `self-rollback without the CLI: ${OLD} connected again ` +
          `${((Date.now() - switched) / 1000).toFixed(1)}s after the switch (deadline 6s)`,
      );
      assert.equal(after.version, OLD);
      assert.equal((await s.host.installed()).current, join("versions", OLD));
      const marker = await readMarker(join(s.host.dir, "update.json"));
      assert.equal(marker?.state, "rolled_back");
      assert.match(marker?.reason ?? "", /did not reach Connected/);
      assert.match(s.host.supervisor.stderr, /switched back to 1\.0\.0/);
    } finally {
      await teardown(s);
    }
  },
);

Deno.test(
  "a release whose daemon exits at once is rolled back by aegis update itself",
  opts,
  async () => {
    const s = await scene(async (releases, work, key) => {
      const launcher = await buildLauncher(work, { version: NEW, key, daemonExits: true });
      await signRelease(releases, NEW, launcher, key);
    });
    try {
      const before = await s.host.state();
      const started = Date.now();
      const out = await s.host.aegis(["update", "--deadline", "5s", "--output", "json"]);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(out.code, 75, `${out.stdout}\n${out.stderr}\n${s.host.supervisor.stderr}`);
      const error = JSON.parse(out.stdout).error;
      assert.equal(error.code, "UPDATE_ROLLED_BACK");
      assert.match(error.message, /did not reach Connected within 5s/);
      assert.equal(error.details.previous_connected, "yes");
      console.log(
        `rollback by the command ${NEW} → ${OLD}: ${seconds.toFixed(1)}s in all; the old ` +
          `version connected again ${error.details.rollback_secs}s after the switch (deadline 5s)`,
      );
      await s.host.waitConnected(OLD, before?.pid);
      assert.equal((await s.host.installed()).current, join("versions", OLD));
      assert.match(s.host.supervisor.stderr, /fixture: exiting/);
    } finally {
      await teardown(s);
    }
  },
);

Deno.test(
  "aegis update between two releases made by `deno task build --fixture`",
  opts,
  async () => {
    // Both versions come out of the real release build: its launchers, import maps, signature.
    let installed = "";
    const s = await scene(async (releases, work, key) => {
      const keyFile = join(work, "release.key");
      await Deno.writeTextFile(keyFile, key.secretKeyText, { mode: 0o600 });
      installed = await buildTaskRelease(releases, OLD, keyFile);
      await buildTaskRelease(releases, NEW, keyFile);
    }, () => Promise.resolve(installed));
    try {
      const out = await s.host.aegis(["update", "--output", "json"]);
      assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}\n${s.host.supervisor.stderr}`);
      assert.deepEqual(
        [JSON.parse(out.stdout).status, JSON.parse(out.stdout).to],
        ["updated", NEW],
      );
      assert.equal((await s.host.state())?.version, NEW);
    } finally {
      await teardown(s);
    }
  },
);

Deno.test(
  "an older signed release is refused unless named with --version",
  opts,
  async () => {
    const OLDER = "0.9.0";
    const s = await scene(async (releases, work, key) => {
      await signRelease(releases, OLDER, await buildLauncher(work, { version: OLDER, key }), key);
    });
    try {
      const before = await snapshot(s.host);
      const refused = await s.host.aegis(["update", "--output", "json"]);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(JSON.parse(refused.stdout).error.message, /older than 1\.0\.0 here/);
      assert.deepEqual(await snapshot(s.host), before);

      const named = await s.host.aegis(["update", "--version", OLDER, "--output", "json"]);
      assert.equal(named.code, 0, `${named.stdout}\n${named.stderr}\n${s.host.supervisor.stderr}`);
      assert.equal(JSON.parse(named.stdout).status, "updated");
      assert.equal((await s.host.state())?.version, OLDER);
    } finally {
      await teardown(s);
    }
  },
);
