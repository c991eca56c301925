import assert from "node:assert/strict";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { exists, modeOf } from "../../shared/fs/atomic.ts";
import { installService } from "./service.ts";
import { context, fakeHost, notFound, when, withTempHome } from "./testing.ts";

const unitOf = (home: string) => join(home, ".config", "systemd", "user", "aegis-edge.service");
const reload = ["systemctl", "--user", "daemon-reload"];
const enableNow = ["systemctl", "--user", "enable", "--now", "aegis-edge.service"];
const linger = ["loginctl", "enable-linger", "alice"];

Deno.test("installService() on systemd runs reload, enable --now and linger in order", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost();
    const report = await installService(context(home, "linux", host.run), {
      start: true,
      replace: false,
    });
    assert.deepEqual(host.calls, [reload, enableNow, linger]);
    assert.equal(report.action, "installed");
    assert.equal(report.started, true);
    assert.equal(report.reachable, true);
    assert.equal(report.unitName, "aegis-edge.service");
    assert.equal(report.path, unitOf(home));
    assert.deepEqual(report.instructions, []);
    assert.deepEqual(report.log, [
      "systemctl --user daemon-reload",
      "systemctl --user enable --now aegis-edge.service",
      "loginctl enable-linger alice",
    ]);
    assert.equal(await modeOf(unitOf(home)), 0o644);
    assert.match(
      await Deno.readTextFile(unitOf(home)),
      /^ExecStart=\/opt\/aegis\/bin\/aegis edge run$/m,
    );
    assert.equal(await modeOf(join(home, ".aegis", "edge")), 0o700);
    assert.ok(await exists(join(home, ".aegis", "edge", "logs")));
  });
});

Deno.test("installService() writes the unit and explains when systemctl is missing", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost(notFound);
    const report = await installService(context(home, "linux", host.run), {
      start: true,
      replace: false,
    });
    assert.ok(await exists(unitOf(home)));
    assert.equal(report.reachable, false);
    assert.equal(report.started, false);
    assert.deepEqual(report.instructions, [
      "systemctl --user daemon-reload",
      "systemctl --user enable --now aegis-edge.service",
      "loginctl enable-linger alice",
      "or run the daemon in the foreground: /opt/aegis/bin/aegis edge run",
    ]);
  });
});

Deno.test("installService() treats a missing user bus as unreachable", async () => {
  await withTempHome(async (home) => {
    const noBus = { code: 1, stdout: "", stderr: "Failed to connect to bus: No medium found\n" };
    const host = fakeHost(when(reload, noBus));
    const report = await installService(context(home, "linux", host.run), {
      start: true,
      replace: false,
    });
    assert.deepEqual(host.calls, [reload]);
    assert.equal(report.reachable, false);
    assert.equal(report.action, "installed");
    assert.ok(
      report.log.includes("! systemctl exited 1: Failed to connect to bus: No medium found"),
    );
    assert.equal(
      report.instructions.at(-1),
      "or run the daemon in the foreground: /opt/aegis/bin/aegis edge run",
    );
  });
});

Deno.test("installService() leaves an installed unit alone unless asked to replace it", async () => {
  await withTempHome(async (home) => {
    await Deno.mkdir(join(unitOf(home), ".."), { recursive: true });
    await Deno.writeTextFile(unitOf(home), "# hand-edited\n");
    const host = fakeHost(
      when(["systemctl", "--user", "is-active"], { code: 0, stdout: "active\n", stderr: "" }),
    );
    const ctx = context(home, "linux", host.run);
    const kept = await installService(ctx, { start: true, replace: false });
    assert.equal(kept.action, "present");
    assert.equal(await Deno.readTextFile(unitOf(home)), "# hand-edited\n");
    assert.deepEqual(host.calls, [["systemctl", "--user", "is-active", "aegis-edge.service"]]);

    host.calls.length = 0;
    const replaced = await installService(ctx, { start: true, replace: true });
    assert.equal(replaced.action, "replaced");
    assert.notEqual(await Deno.readTextFile(unitOf(home)), "# hand-edited\n");
    // A running daemon keeps the old unit until restarted.
    assert.deepEqual(host.calls, [
      reload,
      ["systemctl", "--user", "enable", "aegis-edge.service"],
      ["systemctl", "--user", "restart", "aegis-edge.service"],
      linger,
    ]);
  });
});

Deno.test("installService() with start=false only enables, and reports a linger refusal", async () => {
  await withTempHome(async (home) => {
    const host = fakeHost(when(linger, { code: 1, stdout: "", stderr: "Access denied" }));
    const report = await installService(context(home, "linux", host.run), {
      start: false,
      replace: false,
    });
    assert.deepEqual(host.calls[1], ["systemctl", "--user", "enable", "aegis-edge.service"]);
    assert.equal(report.started, false);
    assert.deepEqual(report.instructions, ["sudo loginctl enable-linger alice"]);
  });
});

Deno.test("installService() throws when the unit cannot be written", async () => {
  await withTempHome(async (home) => {
    await Deno.mkdir(join(home, ".config"));
    await Deno.writeTextFile(join(home, ".config", "systemd"), "a file, not a directory");
    await assert.rejects(
      installService(context(home, "linux", fakeHost().run), { start: true, replace: false }),
      (e) => e instanceof AegisError && e.code === "INTERNAL",
    );
  });
});
