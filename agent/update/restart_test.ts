import assert from "node:assert/strict";
import { edgePaths } from "../state/paths.ts";
import { fakeHost, when, withTempHome } from "../service/testing.ts";
import { systemdUnitPath } from "../service/mod.ts";
import { updateLayout } from "./layout.ts";
import { planRestart, restart } from "./restart.ts";

Deno.test("an installed systemd service is moved onto current/aegis and restarted", async () => {
  await withTempHome(async (home) => {
    const paths = edgePaths(home);
    const layout = updateLayout(paths, "linux");
    // install.sh's service ran /usr/local/bin/aegis; the update's restart rewrites it.
    await Deno.mkdir(`${home}/.config/systemd/user`, { recursive: true });
    await Deno.writeTextFile(systemdUnitPath(home), "ExecStart=/usr/local/bin/aegis edge run\n");
    const host = fakeHost(when(["systemctl", "--user", "is-active"], {
      code: 0,
      stdout: "active\n",
      stderr: "",
    }));
    const plan = await planRestart(paths, layout, { os: "linux", run: host.run, env: {} });
    assert.equal(plan.kind, "service");
    await restart(plan, () => {});
    const unit = await Deno.readTextFile(systemdUnitPath(home));
    assert.match(unit, new RegExp(`^ExecStart=${layout.bin} edge run$`, "m"));
    assert.deepEqual(
      host.calls.filter((c) => c[0] === "systemctl").map((c) => c.slice(2).join(" ")),
      [
        "is-active aegis-edge.service",
        "daemon-reload",
        "enable aegis-edge.service",
        "restart aegis-edge.service",
      ],
    );
  });
});

Deno.test("with no service manager and no daemon running, nothing is restarted", async () => {
  await withTempHome(async (home) => {
    const paths = edgePaths(home);
    const host = fakeHost(() => "not-found");
    const plan = await planRestart(paths, updateLayout(paths, "linux"), {
      os: "linux",
      run: host.run,
      env: {},
    });
    assert.equal(plan.kind, "none");
  });
});
