import assert from "node:assert/strict";
import { join } from "node:path";
import { exists } from "../../shared/fs/atomic.ts";
import { installService, serviceStatus, uninstallService } from "./service.ts";
import { context, fakeHost, notFound, when, withTempHome } from "./testing.ts";

const unitOf = (home: string) => join(home, ".config", "systemd", "user", "aegis-edge.service");
const reload = ["systemctl", "--user", "daemon-reload"];

Deno.test("uninstallService() on systemd disables, removes the unit and is idempotent", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost();
    const ctx = context(home, "linux", host.run);
    await installService(ctx, { start: true, replace: false });
    host.calls.length = 0;
    const removed = await uninstallService(ctx);
    assert.equal(removed.action, "removed");
    assert.equal(await exists(unitOf(home)), false);
    assert.deepEqual(host.calls, [
      ["systemctl", "--user", "disable", "--now", "aegis-edge.service"],
      reload,
    ]);
    const again = await uninstallService(ctx);
    assert.equal(again.action, "absent");
  });
});

Deno.test("uninstallService() on systemd without a bus still removes the unit", async () => {
  await withTempHome(async (home) => {
    await installService(context(home, "linux", fakeHost().run), { start: true, replace: false });
    const wants = join(unitOf(home), "..", "default.target.wants");
    await Deno.mkdir(wants);
    await Deno.symlink(unitOf(home), join(wants, "aegis-edge.service"));
    const report = await uninstallService(context(home, "linux", fakeHost(notFound).run));
    assert.equal(report.action, "removed");
    assert.equal(report.reachable, false);
    assert.equal(await exists(unitOf(home)), false);
    assert.equal(await exists(join(wants, "aegis-edge.service")), false);
    assert.deepEqual(report.instructions, [
      "systemctl --user stop aegis-edge.service",
      "systemctl --user daemon-reload",
    ]);
  });
});

Deno.test("serviceStatus() on systemd reads is-active, or says unknown without a bus", async () => {
  await withTempHome(async (home) => {
    const up = fakeHost(when(["systemctl"], { code: 0, stdout: "active\n", stderr: "" }));
    await installService(context(home, "linux", up.run), { start: true, replace: false });
    assert.deepEqual(await serviceStatus(context(home, "linux", up.run)), {
      manager: "systemd",
      path: unitOf(home),
      installed: true,
      active: "active",
      reachable: true,
    });
    const down = fakeHost(when(["systemctl"], { code: 3, stdout: "failed\n", stderr: "" }));
    assert.equal((await serviceStatus(context(home, "linux", down.run))).active, "inactive");
    const noBus = fakeHost(
      when(["systemctl"], { code: 1, stdout: "", stderr: "Failed to connect to bus" }),
    );
    const status = await serviceStatus(context(home, "linux", noBus.run));
    assert.equal(status.active, "unknown");
    assert.equal(status.reachable, false);
  });
});
