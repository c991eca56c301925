import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { Io } from "../../shared/cli/io.ts";
import { isDaemonRun, loadProgram } from "./entry.ts";

/** Commander exits the process from a subcommand unless each command is told otherwise. */
// deno-lint-ignore no-explicit-any
function throwInsteadOfExit<T extends { commands: readonly any[]; exitOverride(): T }>(c: T): T {
  c.exitOverride();
  for (const sub of c.commands) throwInsteadOfExit(sub);
  return c;
}

async function tree(build: string[], io: Io) {
  return throwInsteadOfExit((await loadProgram(build))(io, () => {}));
}

function captureIo(): Io & { text: () => string } {
  let text = "";
  return {
    out: (t) => void (text += t),
    err: (t) => void (text += t),
    interactive: false,
    text: () => text,
  };
}

async function helpFrom(args: string[], build = args): Promise<string> {
  const io = captureIo();
  const program = await tree(build, io);
  await assert.rejects(program.parseAsync(args, { from: "user" }), {
    code: "commander.helpDisplayed",
  });
  return io.text();
}

Deno.test("isDaemonRun() is true only for `edge run …`", () => {
  assert.equal(isDaemonRun(["edge", "run"]), true);
  assert.equal(isDaemonRun(["edge", "run", "--supervised", "--ca-file", "ca.pem"]), true);
  assert.equal(isDaemonRun(["edge", "status"]), false);
  assert.equal(isDaemonRun(["run"]), false);
  assert.equal(isDaemonRun(["update", "edge", "run"]), false);
  assert.equal(isDaemonRun([]), false);
});

Deno.test("loadProgram() gives `edge run` the same help in the daemon's tree as in the full one", async () => {
  const full = await helpFrom(["edge", "run", "--help"], ["edge", "status"]);
  const daemon = await helpFrom(["edge", "run", "--help"]);
  assert.match(daemon, /--supervised/);
  assert.equal(daemon, full);
});

Deno.test("loadProgram() for `edge run` rejects an unknown option as the full tree does", async () => {
  const parse = async (build: string[]) => {
    const io = captureIo();
    const program = await tree(build, io);
    const error = await program.parseAsync(["edge", "run", "--bogus"], { from: "user" }).then(
      () => undefined,
      (e) => e,
    );
    return { code: error?.code, text: io.text() };
  };
  const daemon = await parse(["edge", "run"]);
  assert.equal(daemon.code, "commander.unknownOption");
  assert.deepEqual(daemon, await parse(["edge", "status"]));
});

Deno.test("the daemon's tree statically loads no prompts, enrollment or operator code", async () => {
  const entry = new URL("./daemon_program.ts", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", fileURLToPath(entry)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const loaded = graph.modules.map((m) => m.specifier);
  assert.ok(loaded.some((s) => s.endsWith("/agent/daemon/daemon.ts")));
  const unwanted = loaded.filter((s) =>
    /@inquirer|\/agent\/(operator|enroll)\/|\/agent\/cli\/program\.ts$/.test(s)
  );
  assert.deepEqual(unwanted, []);
});

Deno.test("`aegis --version` fails when a daemon module fails to load (self-update pre-flight)", async () => {
  const root = new URL("../../", import.meta.url);
  const dir = await Deno.makeTempDir({ prefix: "aegis-entry-" });
  try {
    const broken = `${dir}/broken.ts`;
    // It links (its importers find their name) and then throws, as a bad build might.
    await Deno.writeTextFile(
      broken,
      'export class EdgeConnection {}\nthrow new Error("broken daemon module");\n',
    );
    const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
    const map = `${dir}/import_map.json`;
    await Deno.writeTextFile(
      map,
      JSON.stringify({
        imports: {
          ...denoJson.imports,
          [new URL("agent/daemon/connection.ts", root).href]: `file://${broken}`,
        },
      }),
    );
    const version = (importMap?: string) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          ...(importMap ? ["--import-map", importMap] : []),
          fileURLToPath(new URL("agent/main.ts", root)),
          "--version",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const good = await version();
    assert.equal(good.code, 0, new TextDecoder().decode(good.stderr));
    const bad = await version(map);
    assert.notEqual(bad.code, 0);
    assert.match(new TextDecoder().decode(bad.stderr), /broken daemon module/);
    assert.equal(new TextDecoder().decode(bad.stdout), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
