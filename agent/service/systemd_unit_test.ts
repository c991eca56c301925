import assert from "node:assert/strict";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { renderSystemdUnit, systemdUnitPath } from "./systemd_unit.ts";

const HOME = "/home/alice";

function lines(unit: string): string[] {
  return unit.split("\n");
}

Deno.test("renderSystemdUnit() includes the hardening flags", () => {
  const unit = lines(renderSystemdUnit({ command: ["/usr/local/bin/aegis"], home: HOME }));
  for (
    const line of [
      "NoNewPrivileges=yes",
      "PrivateTmp=yes",
      "ProtectSystem=strict",
      "ProtectHome=tmpfs",
      "BindPaths=/home/alice/.aegis/edge",
      "Restart=always",
      "RestartSec=5",
      "After=network-online.target",
      "Wants=network-online.target",
      "WantedBy=default.target",
      "Environment=HOME=/home/alice",
      "ExecStart=/usr/local/bin/aegis edge run",
    ]
  ) assert.ok(unit.includes(line), `missing ${line}`);
  // A binary outside home stays visible through ProtectSystem=, so nothing else is bound.
  assert.ok(!unit.some((line) => line.startsWith("BindReadOnlyPaths=")));
  assert.ok(!unit.includes("ProtectHome=true"));
});

Deno.test("renderSystemdUnit() binds a binary that lives in home read-only", () => {
  const unit = lines(renderSystemdUnit({ command: [`${HOME}/.local/bin/aegis`], home: HOME }));
  assert.ok(unit.includes("BindReadOnlyPaths=-/home/alice/.local/bin/aegis"));
});

Deno.test("renderSystemdUnit() quotes ExecStart= by systemd's rules", () => {
  const unit = renderSystemdUnit({
    command: ["/opt/my app/deno", "run", "-A", '/srv/a "b" 100%/$main\\.ts', ";"],
    home: "/home/al ice",
  });
  const exec = lines(unit).find((line) => line.startsWith("ExecStart="));
  assert.equal(
    exec,
    String.raw`ExecStart="/opt/my app/deno" run -A "/srv/a \"b\" 100%%/$$main\\.ts" ";" edge run`,
  );
  assert.ok(lines(unit).includes('Environment="HOME=/home/al ice"'));
  assert.ok(lines(unit).includes("WorkingDirectory=/home/al ice/.aegis/edge"));
});

Deno.test("renderSystemdUnit() refuses a relative executable and control characters", () => {
  assert.throws(
    () => renderSystemdUnit({ command: ["aegis"], home: HOME }),
    (e) => e instanceof AegisError && e.code === "INVALID_ARGUMENT",
  );
  assert.throws(
    () => renderSystemdUnit({ command: ["/bin/aegis", "a\nExecStartPre=/bin/evil"], home: HOME }),
    (e) => e instanceof AegisError && e.code === "INVALID_ARGUMENT",
  );
});

Deno.test("systemdUnitPath() is the user unit directory", () => {
  assert.equal(systemdUnitPath(HOME), "/home/alice/.config/systemd/user/aegis-edge.service");
});

Deno.test("renderSystemdUnit() output passes `systemd-analyze --user verify`", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const runtimeDir = join(dir, "runtime");
    await Deno.mkdir(runtimeDir, { mode: 0o700 });
    await Deno.chmod(runtimeDir, 0o700);
    // Awkward characters on purpose: each value must survive systemd's own parser.
    const home = join(dir, "home of %u $USER");
    const unitPath = join(dir, "aegis-edge.service");
    await Deno.writeTextFile(
      unitPath,
      renderSystemdUnit({
        command: [Deno.execPath(), "run", "-A", join(home, "aegis app", "main.ts")],
        home,
        readOnlyPaths: [join(home, "aegis app"), join(home, "odd:name")],
      }),
    );
    const { code, stdout, stderr } = await verify(unitPath, runtimeDir);
    const output = (stdout + stderr).trim();
    assert.equal(output, "", `systemd-analyze printed:\n${output}`);
    assert.equal(code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function verify(unitPath: string, runtimeDir: string) {
  try {
    const out = await new Deno.Command("systemd-analyze", {
      args: ["--user", "verify", unitPath],
      env: { XDG_RUNTIME_DIR: runtimeDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      assert.fail("systemd-analyze is not installed (apt-get install -y systemd)");
    }
    throw error;
  }
}
