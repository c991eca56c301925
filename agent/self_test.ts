import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { selfCommand, stableBinary } from "./self.ts";

Deno.test("selfCommand() runs the entry module through deno under `deno run`", () => {
  const command = selfCommand({
    execPath: "/usr/local/bin/deno",
    mainModule: "file:///home/al%20ice/aegis/agent/main.ts",
  });
  assert.deepEqual(command, [
    "/usr/local/bin/deno",
    "run",
    "-A",
    "--v8-flags=--no-maglev",
    fileURLToPath("file:///home/al%20ice/aegis/agent/main.ts"),
  ]);
});

Deno.test("selfCommand() recognises deno.exe", () => {
  const command = selfCommand({
    execPath: "C:\\Tools\\DENO.EXE",
    mainModule: "file:///C:/aegis/agent/main.ts",
  });
  assert.equal(command.length, 5);
  assert.deepEqual(command.slice(0, 3), ["C:\\Tools\\DENO.EXE", "run", "-A"]);
});

Deno.test("selfCommand() is the binary alone when deno compiled it", () => {
  // A compiled binary still reports a file: URL main module, inside its embedded file system.
  const command = selfCommand({
    execPath: "/usr/local/bin/aegis",
    mainModule: "file:///tmp/deno-compile-aegis/agent/main.ts",
  });
  assert.deepEqual(command, ["/usr/local/bin/aegis"]);
});

Deno.test("selfCommand() is the runtime alone for a remote main module", () => {
  const command = selfCommand({
    execPath: "/usr/bin/deno",
    mainModule: "https://example.com/aegis/main.ts",
  });
  assert.deepEqual(command, ["/usr/bin/deno"]);
});

Deno.test("selfCommand() describes this very test run", () => {
  // `deno test` runs under the deno binary with this file as the main module.
  assert.deepEqual(selfCommand(), [
    Deno.execPath(),
    "run",
    "-A",
    "--v8-flags=--no-maglev",
    fileURLToPath(Deno.mainModule),
  ]);
});

Deno.test("selfCommand() runs an updated binary through the current link, not its version's file", () => {
  const command = selfCommand({
    execPath: "/home/al/.aegis/edge/versions/0.2.0/aegis",
    mainModule: "file:///tmp/deno-compile-aegis/agent/main.ts",
  });
  assert.deepEqual(command, ["/home/al/.aegis/edge/current/aegis"]);
  // Anything else is left as it is (install.sh's /usr/local/bin/aegis, a Windows bin\aegis.exe).
  assert.equal(stableBinary("/usr/local/bin/aegis"), "/usr/local/bin/aegis");
  assert.equal(stableBinary("/opt/versions/0.2.0/aegis"), "/opt/versions/0.2.0/aegis");
});
