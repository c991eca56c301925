import assert from "node:assert/strict";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { launchdPlistPath, renderLaunchdPlist, xmlEscape } from "./launchd_plist.ts";

/** Parses a plist with Python's plistlib, a real parser, and hands back its JSON form. */
async function parsePlist(path: string): Promise<Record<string, unknown>> {
  const script =
    "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))";
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("python3", { args: ["-c", script, path], stderr: "piped" })
      .output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) assert.fail("python3 is not installed");
    throw error;
  }
  const text = new TextDecoder();
  assert.equal(out.code, 0, `plistlib failed:\n${text.decode(out.stderr)}`);
  return JSON.parse(text.decode(out.stdout));
}

Deno.test("renderLaunchdPlist() parses with plistlib to the intended values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const home = "/Users/o'brien & <co>";
    const command = ["/Applications/A&B <beta>/aegis", '--label="x"', "50% ]]> done"];
    const path = join(dir, "io.aegis.edge.plist");
    await Deno.writeTextFile(path, renderLaunchdPlist({ command, home }));
    assert.deepEqual(await parsePlist(path), {
      Label: "io.aegis.edge",
      ProgramArguments: [...command, "edge", "run"],
      RunAtLoad: true,
      KeepAlive: true,
      StandardOutPath: `${home}/.aegis/edge/logs/edge.out.log`,
      StandardErrorPath: `${home}/.aegis/edge/logs/edge.err.log`,
      EnvironmentVariables: { HOME: home },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("xmlEscape() escapes markup and refuses what XML cannot hold", () => {
  assert.equal(xmlEscape(`a&b<c>"d"'e'`), "a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;");
  assert.throws(
    () => xmlEscape("bell\x07"),
    (e) => e instanceof AegisError && e.code === "INVALID_ARGUMENT",
  );
});

Deno.test("launchdPlistPath() is the user's LaunchAgents directory", () => {
  assert.equal(launchdPlistPath("/Users/al"), "/Users/al/Library/LaunchAgents/io.aegis.edge.plist");
});
