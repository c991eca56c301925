import assert from "node:assert/strict";
import { nssmCommands, nssmText } from "./nssm.ts";
import { windowsArg } from "./quote.ts";

const HOME = "C:\\Users\\Ann Lee";

Deno.test("nssmCommands() registers the compiled binary and starts it", () => {
  assert.deepEqual(nssmCommands({ command: ["C:\\Program Files\\Aegis\\aegis.exe"], home: HOME }), [
    [
      "nssm",
      "install",
      "aegis-edge",
      "C:\\Program Files\\Aegis\\aegis.exe",
      "edge run --supervised",
    ],
    ["nssm", "set", "aegis-edge", "AppDirectory", "C:\\Users\\Ann Lee\\.aegis\\edge"],
    ["nssm", "set", "aegis-edge", "Start", "SERVICE_AUTO_START"],
    [
      "nssm",
      "set",
      "aegis-edge",
      "AppStdout",
      "C:\\Users\\Ann Lee\\.aegis\\edge\\logs\\edge.out.log",
    ],
    [
      "nssm",
      "set",
      "aegis-edge",
      "AppStderr",
      "C:\\Users\\Ann Lee\\.aegis\\edge\\logs\\edge.err.log",
    ],
    [
      "nssm",
      "set",
      "aegis-edge",
      "AppEnvironmentExtra",
      "HOME=C:\\Users\\Ann Lee",
      "USERPROFILE=C:\\Users\\Ann Lee",
    ],
    ["nssm", "set", "aegis-edge", "DisplayName", "AEGIS Edge agent"],
    [
      "nssm",
      "set",
      "aegis-edge",
      "Description",
      "Runs `aegis edge run`: the AEGIS Edge agent daemon.",
    ],
    ["nssm", "start", "aegis-edge"],
  ]);
});

Deno.test("nssmCommands() passes deno's arguments as one pre-quoted parameter string", () => {
  const [install] = nssmCommands({
    command: ["C:\\deno\\deno.exe", "run", "-A", "C:\\Users\\Ann Lee\\aegis\\agent\\main.ts"],
    home: HOME,
  });
  assert.deepEqual(install, [
    "nssm",
    "install",
    "aegis-edge",
    "C:\\deno\\deno.exe",
    'run -A "C:\\Users\\Ann Lee\\aegis\\agent\\main.ts" edge run --supervised',
  ]);
});

Deno.test("windowsArg() quotes the way CommandLineToArgvW splits", () => {
  assert.equal(windowsArg("plain"), "plain");
  assert.equal(windowsArg(""), '""');
  assert.equal(windowsArg("a b"), '"a b"');
  assert.equal(windowsArg('say "hi"'), '"say \\"hi\\""');
  assert.equal(windowsArg("C:\\dir with space\\"), '"C:\\dir with space\\\\"');
  assert.equal(windowsArg('a\\"b c'), '"a\\\\\\"b c"');
  assert.equal(windowsArg("C:\\no\\space"), "C:\\no\\space");
});

Deno.test("nssmText() reads nssm's UTF-16 output", () => {
  const utf16 = new Uint8Array([
    0xff,
    0xfe,
    ...[..."SERVICE_RUNNING\r\n"].flatMap((c) => [c.charCodeAt(0), 0]),
  ]);
  assert.equal(nssmText(new TextDecoder().decode(utf16)), "SERVICE_RUNNING");
  assert.equal(nssmText("SERVICE_STOPPED\n"), "SERVICE_STOPPED");
});
