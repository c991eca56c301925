import assert from "node:assert/strict";
import { join } from "node:path";
import { exists, modeOf } from "../../shared/fs/atomic.ts";
import { installService, serviceStatus, uninstallService } from "./service.ts";
import { context, fakeHost, notFound, when, withTempHome } from "./testing.ts";

const plistOf = (home: string) => join(home, "Library", "LaunchAgents", "io.aegis.edge.plist");

Deno.test("installService() on launchd bootstraps the agent into the GUI domain", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost();
    const report = await installService(context(home, "darwin", host.run), {
      start: true,
      replace: false,
    });
    assert.deepEqual(host.calls, [["launchctl", "bootstrap", "gui/501", plistOf(home)]]);
    assert.equal(report.manager, "launchd");
    assert.equal(report.unitName, "io.aegis.edge");
    assert.equal(report.started, true);
    assert.equal(await modeOf(plistOf(home)), 0o644);
    // launchd opens the log files but does not create their directory.
    assert.ok(await exists(join(home, ".aegis", "edge", "logs")));
  });
});

Deno.test("installService() on launchd falls back to `launchctl load -w`", async () => {
  await withTempHome(async (home) => {
    const refused = { code: 5, stdout: "", stderr: "Bootstrap failed: 5: Input/output error" };
    const host = fakeHost(when(["launchctl", "bootstrap"], refused));
    const report = await installService(context(home, "darwin", host.run), {
      start: true,
      replace: false,
    });
    assert.deepEqual(host.calls.at(-1), ["launchctl", "load", "-w", plistOf(home)]);
    assert.equal(report.started, true);
    assert.equal(report.reachable, true);
  });
});

Deno.test("installService() on launchd without launchctl writes the plist and explains", async () => {
  await withTempHome(async (home) => {
    const report = await installService(context(home, "darwin", fakeHost(notFound).run), {
      start: true,
      replace: false,
    });
    assert.ok(await exists(plistOf(home)));
    assert.equal(report.reachable, false);
    assert.deepEqual(report.instructions, [
      `launchctl bootstrap gui/501 ${plistOf(home)}`,
      "or run the daemon in the foreground: /opt/aegis/bin/aegis edge run",
    ]);
  });
});

Deno.test("installService() on launchd boots out the old job before replacing it", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost();
    const ctx = context(home, "darwin", host.run);
    await installService(ctx, { start: true, replace: false });
    host.calls.length = 0;
    const report = await installService(ctx, { start: true, replace: true });
    assert.equal(report.action, "replaced");
    assert.deepEqual(host.calls, [
      ["launchctl", "bootout", "gui/501/io.aegis.edge"],
      ["launchctl", "bootstrap", "gui/501", plistOf(home)],
    ]);
  });
});

Deno.test("installService() on launchd with start=false only enables the label", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost();
    const report = await installService(context(home, "darwin", host.run), {
      start: false,
      replace: false,
    });
    assert.deepEqual(host.calls, [["launchctl", "enable", "gui/501/io.aegis.edge"]]);
    assert.equal(report.started, false);
  });
});

Deno.test("uninstallService() on launchd boots out and deletes the plist", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost();
    const ctx = context(home, "darwin", host.run);
    await installService(ctx, { start: true, replace: false });
    host.calls.length = 0;
    const report = await uninstallService(ctx);
    assert.equal(report.action, "removed");
    assert.deepEqual(host.calls, [["launchctl", "bootout", "gui/501/io.aegis.edge"]]);
    assert.equal(await exists(plistOf(home)), false);
    assert.equal((await uninstallService(ctx)).action, "absent");
  });
});

Deno.test("serviceStatus() on launchd reads the job state from `launchctl print`", async () => {
  await withTempHome(async (home) => {
    const running = {
      code: 0,
      stdout: "io.aegis.edge = {\n\tstate = running\n\tpid = 7\n}",
      stderr: "",
    };
    const host = fakeHost(when(["launchctl", "print"], running));
    const status = await serviceStatus(context(home, "darwin", host.run));
    assert.deepEqual(host.calls, [["launchctl", "print", "gui/501/io.aegis.edge"]]);
    assert.deepEqual(status, {
      manager: "launchd",
      path: plistOf(home),
      installed: false,
      active: "active",
      reachable: true,
    });
    const gone = fakeHost(
      when(["launchctl"], { code: 113, stdout: "", stderr: "Could not find service" }),
    );
    assert.equal((await serviceStatus(context(home, "darwin", gone.run))).active, "inactive");
  });
});
