import assert from "node:assert/strict";
import { installService, serviceStatus, uninstallService } from "./service.ts";
import { nssmCommands } from "./nssm.ts";
import { context, fakeHost, notFound, when, withTempHome } from "./testing.ts";

const status = ["nssm", "status", "aegis-edge"];
const noService = { code: 3, stdout: "", stderr: "Can't open service!" };
const running = { code: 0, stdout: "SERVICE_RUNNING\r\n", stderr: "" };

Deno.test("installService() on Windows runs the nssm commands in order", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost(when(status, noService));
    const ctx = context(home, "windows", host.run);
    const report = await installService(ctx, { start: true, replace: false });
    assert.deepEqual(host.calls, [status, ...nssmCommands(ctx)]);
    assert.equal(report.manager, "nssm");
    assert.equal(report.path, undefined);
    assert.equal(report.action, "installed");
    assert.equal(report.started, true);
  });
});

Deno.test("installService() on Windows without nssm lists the commands to run", async () => {
  await withTempHome(async (home) => {
    const ctx = context(home, "windows", fakeHost(notFound).run);
    const report = await installService(ctx, { start: true, replace: false });
    assert.equal(report.reachable, false);
    assert.equal(
      report.instructions[0],
      `nssm install aegis-edge C:\\Aegis\\aegis.exe "edge run --supervised"`,
    );
    assert.equal(report.instructions.at(-2), "nssm start aegis-edge");
    assert.equal(
      report.instructions.at(-1),
      "or run the daemon in the foreground: C:\\Aegis\\aegis.exe edge run",
    );
  });
});

Deno.test("installService() on Windows keeps or replaces a registered service", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost(when(status, running));
    const ctx = context(home, "windows", host.run);
    assert.equal((await installService(ctx, { start: true, replace: false })).action, "present");
    assert.deepEqual(host.calls, [status]);
    host.calls.length = 0;
    const report = await installService(ctx, { start: false, replace: true });
    assert.equal(report.action, "replaced");
    assert.deepEqual(host.calls, [
      status,
      ["nssm", "stop", "aegis-edge"],
      ["nssm", "remove", "aegis-edge", "confirm"],
      ...nssmCommands(ctx).slice(0, -1),
    ]);
  });
});

Deno.test("uninstallService() on Windows stops and removes the service", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost(when(status, running));
    const report = await uninstallService(context(home, "windows", host.run));
    assert.equal(report.action, "removed");
    assert.deepEqual(host.calls.slice(1), [
      ["nssm", "stop", "aegis-edge"],
      ["nssm", "remove", "aegis-edge", "confirm"],
    ]);
    const gone = fakeHost(when(status, noService));
    assert.equal((await uninstallService(context(home, "windows", gone.run))).action, "absent");
  });
});

Deno.test("serviceStatus() on Windows reads `nssm status`", async () => {
  await withTempHome(async (home) => {
    const ctx = context(home, "windows", fakeHost(when(status, running)).run);
    assert.deepEqual(await serviceStatus(ctx), {
      manager: "nssm",
      path: undefined,
      installed: true,
      active: "active",
      reachable: true,
    });
    const missing = await serviceStatus(context(home, "windows", fakeHost(notFound).run));
    assert.equal(missing.active, "unknown");
    assert.equal(missing.reachable, false);
  });
});
