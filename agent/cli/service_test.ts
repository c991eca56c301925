import assert from "node:assert/strict";
import { join } from "node:path";
import { Command } from "@commander-js/extra-typings";
import { type Io, reportError } from "../../shared/cli/io.ts";
import { exists, modeOf } from "../../shared/fs/atomic.ts";
import type { CommandRunner } from "../service/mod.ts";
import { registerService, type ServiceDeps } from "./service.ts";

const linux = Deno.build.os === "linux";

/**
 * The real systemctl and loginctl, run with a scrubbed environment whose XDG_RUNTIME_DIR does
 * not exist: no user bus can be found, so the host's own systemd is never touched.
 */
function cutOffRunner(home: string): CommandRunner {
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home };
  return async (cmd, args) => {
    try {
      const out = await new Deno.Command(cmd, {
        args,
        clearEnv: true,
        env: { ...env, XDG_RUNTIME_DIR: join(home, "no-such-runtime-dir") },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder();
      return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return "not-found";
      throw error;
    }
  };
}

/** Runs `aegis edge service ...` in-process the way agent/main.ts does, against a temp HOME. */
async function aegis(home: string, args: string[], run = cutOffRunner(home)) {
  let out = "";
  let err = "";
  const io: Io = {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    interactive: false,
  };
  const deps: ServiceDeps = { env: () => ({ HOME: home, USER: "alice" }), run };
  let code = 0;
  const program = new Command("aegis").exitOverride().configureOutput({
    writeOut: io.out,
    writeErr: io.err,
  });
  registerService(program.command("edge"), { io, setExit: (c) => code = c }, deps);
  try {
    await program.parseAsync(["edge", "service", ...args], { from: "user" });
  } catch (error) {
    const commander = (error as { code?: string }).code?.startsWith("commander.");
    code = commander ? (error as { exitCode: number }).exitCode : reportError(io, error);
  }
  return { code, out, err };
}

async function withHome(fn: (home: string, unit: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir();
  try {
    await fn(home, join(home, ".config", "systemd", "user", "aegis-edge.service"));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test(
  "service install writes the unit, exits 0 and says what to run when systemd is unreachable",
  { ignore: !linux },
  async () => {
    await withHome(async (home, unit) => {
      const r = await aegis(home, ["install"]);
      assert.equal(r.code, 0, r.err);
      assert.ok(await exists(unit));
      assert.equal(await modeOf(unit), 0o644);
      assert.match(await Deno.readTextFile(unit), /^ExecStart=.* edge run$/m);
      const lines = r.out.trimEnd().split("\n");
      assert.equal(lines[0], `✔ Wrote ${unit}`);
      assert.match(lines[1], /^! systemd is not reachable from here, so the service was not/);
      assert.deepEqual(lines.slice(2).map((l) => l.trim()), [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now aegis-edge.service",
        "loginctl enable-linger alice",
        lines.at(-1)!.trim(),
      ]);
      assert.match(lines.at(-1)!, /^ {4}or run the daemon in the foreground: .* edge run$/);
      assert.ok(!r.out.includes("Started"), r.out);
    });
  },
);

Deno.test("service install --output json prints the report", { ignore: !linux }, async () => {
  await withHome(async (home, unit) => {
    const r = await aegis(home, ["install", "--output", "json"]);
    assert.equal(r.code, 0);
    const report = JSON.parse(r.out);
    assert.equal(report.action, "installed");
    assert.equal(report.path, unit);
    assert.equal(report.reachable, false);
    assert.equal(report.started, false);
    assert.ok(report.instructions.length > 0);
  });
});

Deno.test("service install keeps an installed unit; reinstall replaces it", {
  ignore: !linux,
}, async () => {
  await withHome(async (home, unit) => {
    await aegis(home, ["install"]);
    await Deno.writeTextFile(unit, "# edited by hand\n");
    const again = await aegis(home, ["install"]);
    assert.equal(again.code, 0);
    assert.match(again.out, new RegExp(`^✔ Already installed: ${unit}$`, "m"));
    assert.match(again.out, /aegis edge service reinstall/);
    assert.equal(await Deno.readTextFile(unit), "# edited by hand\n");

    const re = await aegis(home, ["reinstall"]);
    assert.equal(re.code, 0);
    assert.match(re.out, new RegExp(`^✔ Replaced ${unit}$`, "m"));
    assert.match(re.out, /not reachable from here/);
    assert.match(await Deno.readTextFile(unit), /^ExecStart=/m);
  });
});

Deno.test("service status --output json shows the installed unit", { ignore: !linux }, async () => {
  await withHome(async (home, unit) => {
    const before = JSON.parse((await aegis(home, ["status", "--output", "json"])).out);
    assert.deepEqual(before, {
      manager: "systemd",
      path: unit,
      installed: false,
      active: "unknown",
      reachable: false,
    });
    await aegis(home, ["install"]);
    const r = await aegis(home, ["status", "--output", "json"]);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), { ...before, installed: true });

    const text = await aegis(home, ["status"]);
    assert.match(text.out, /^installed: yes$/m);
    assert.match(text.out, /^reachable: no$/m);
    assert.match(text.out, new RegExp(`^file:      ${unit}$`, "m"));
  });
});

Deno.test("service uninstall removes the unit and says what to stop by hand", {
  ignore: !linux,
}, async () => {
  await withHome(async (home, unit) => {
    await aegis(home, ["install"]);
    const r = await aegis(home, ["uninstall"]);
    assert.equal(r.code, 0, r.err);
    assert.ok(!await exists(unit));
    assert.deepEqual(r.out.trimEnd().split("\n"), [
      `✔ Removed ${unit}`,
      "! systemd is not reachable from here; if the daemon is still running, stop it:",
      "    systemctl --user stop aegis-edge.service",
      "    systemctl --user daemon-reload",
    ]);
    const status = JSON.parse((await aegis(home, ["status", "--output", "json"])).out);
    assert.equal(status.installed, false);

    const again = await aegis(home, ["uninstall"]);
    assert.equal(again.code, 0);
    assert.match(again.out, /^✔ Not installed; nothing to remove/);
  });
});

Deno.test("service install reports started when systemd answers", { ignore: !linux }, async () => {
  await withHome(async (home, unit) => {
    const calls: string[] = [];
    const ok: CommandRunner = (cmd, args) => {
      calls.push([cmd, ...args].join(" "));
      return Promise.resolve({ code: 0, stdout: "active\n", stderr: "" });
    };
    const r = await aegis(home, ["install"], ok);
    assert.equal(r.code, 0);
    assert.deepEqual(r.out.trimEnd().split("\n"), [
      `✔ Wrote ${unit}`,
      "✔ Started aegis-edge.service",
    ]);
    assert.ok(calls.includes("systemctl --user enable --now aegis-edge.service"), calls.join());
    const status = JSON.parse((await aegis(home, ["status", "--output", "json"], ok)).out);
    assert.equal(status.active, "active");
  });
});

Deno.test("service install fails non-zero when the unit cannot be written", {
  ignore: !linux,
}, async () => {
  await withHome(async (home) => {
    // A file where the unit's directory should be: the write fails for any user.
    await Deno.mkdir(join(home, ".config", "systemd"), { recursive: true });
    await Deno.writeTextFile(join(home, ".config", "systemd", "user"), "");
    const r = await aegis(home, ["install"]);
    assert.equal(r.code, 70);
    assert.match(r.err, /cannot write the service file/);
  });
});
