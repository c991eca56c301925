import assert from "node:assert/strict";
import { join } from "node:path";
import { Command } from "@commander-js/extra-typings";
import { type Io, reportError } from "../../shared/cli/io.ts";
import { modeOf } from "../../shared/fs/atomic.ts";
import { registerSecrets, type SecretsDeps } from "./secrets.ts";

interface Terminal {
  /** Piped standard input; undefined means stdin is a terminal. */
  stdin?: string | Uint8Array;
  stdoutTty?: boolean;
  interactive?: boolean;
  prompt?: (message: string) => Promise<string>;
}

interface Run {
  code: number;
  out: string;
  err: string;
  prompts: string[];
}

/** Runs `aegis edge secrets ...` in-process the way agent/main.ts does, against a temp HOME. */
async function aegis(home: string, args: string[], t: Terminal = {}): Promise<Run> {
  let out = "";
  let err = "";
  const prompts: string[] = [];
  const io: Io = {
    out: (text) => void (out += text),
    err: (text) => void (err += text),
    interactive: t.interactive ?? false,
  };
  const deps: SecretsDeps = {
    env: () => ({ HOME: home }),
    stdinIsTerminal: () => t.stdin === undefined,
    stdoutIsTerminal: () => t.stdoutTty ?? false,
    readStdin: () =>
      Promise.resolve(typeof t.stdin === "string" ? new TextEncoder().encode(t.stdin) : t.stdin!),
    promptHidden: (message) => {
      prompts.push(message);
      return t.prompt ? t.prompt(message) : Promise.reject(new Error("unexpected prompt"));
    },
  };
  let code = 0;
  const program = new Command("aegis").exitOverride().configureOutput({
    writeOut: io.out,
    writeErr: io.err,
  });
  const edge = program.command("edge");
  registerSecrets(edge, { io, setExit: (c) => code = c }, deps);
  try {
    await program.parseAsync(["edge", "secrets", ...args], { from: "user" });
  } catch (error) {
    const commander = (error as { code?: string }).code?.startsWith("commander.");
    code = commander ? (error as { exitCode: number }).exitCode : reportError(io, error);
  }
  return { code, out, err, prompts };
}

async function withHome(fn: (home: string, dir: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir();
  try {
    await fn(home, join(home, ".aegis", "edge", "secrets"));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("secrets set reads piped stdin and drops one trailing newline", async () => {
  await withHome(async (home, dir) => {
    const r = await aegis(home, ["set", "DB_PASSWORD"], { stdin: "s3cret\n\n" });
    assert.equal(r.code, 0);
    assert.equal(r.out, "");
    assert.equal(r.err, "✔ Stored secret DB_PASSWORD (7 bytes)\n");
    assert.equal(await Deno.readTextFile(join(dir, "DB_PASSWORD")), "s3cret\n");
    if (Deno.build.os !== "windows") {
      assert.equal(await modeOf(dir), 0o700);
      assert.equal(await modeOf(join(dir, "DB_PASSWORD")), 0o600);
    }
  });
});

Deno.test("secrets set counts bytes, not characters, and stores CRLF input cleanly", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "pw"], { stdin: "pässwörd\r\n" });
    assert.equal(r.err, "✔ Stored secret pw (10 bytes)\n");
    assert.equal((await aegis(home, ["get", "pw"])).out, "pässwörd");
  });
});

Deno.test("secrets set stores an empty value", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "EMPTY"], { stdin: "" });
    assert.equal(r.code, 0);
    assert.equal(r.err, "✔ Stored secret EMPTY (0 bytes)\n");
    const got = await aegis(home, ["get", "EMPTY"]);
    assert.equal(got.code, 0);
    assert.equal(got.out, "");
  });
});

Deno.test("secrets set --from-file reads the file, in preference to stdin", async () => {
  await withHome(async (home) => {
    const file = join(home, "token.txt");
    await Deno.writeTextFile(file, "from-file\n");
    const r = await aegis(home, ["set", "T", "--from-file", file], { stdin: "from-stdin" });
    assert.equal(r.code, 0);
    assert.equal((await aegis(home, ["get", "T"])).out, "from-file");
    const dash = await aegis(home, ["set", "U", "--from-file", "-"], { stdin: "piped\n" });
    assert.equal(dash.code, 0);
    assert.equal((await aegis(home, ["get", "U"])).out, "piped");
  });
});

Deno.test("secrets set --from-file fails cleanly on a missing file", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "T", "--from-file", join(home, "nope")]);
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot read --from-file .*nope/);
  });
});

Deno.test("secrets set prompts without echo when interactive", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "API_KEY"], {
      interactive: true,
      prompt: () => Promise.resolve("typed"),
    });
    assert.equal(r.code, 0);
    assert.deepEqual(r.prompts, ["Value for API_KEY:"]);
    assert.equal(r.err, "✔ Stored secret API_KEY (5 bytes)\n");
    assert.equal((await aegis(home, ["get", "API_KEY"])).out, "typed");
  });
});

Deno.test("secrets set cancelled at the prompt stores nothing", async () => {
  await withHome(async (home) => {
    const cancel = () => {
      const error = new Error("User force closed the prompt");
      error.name = "ExitPromptError";
      return Promise.reject(error);
    };
    const r = await aegis(home, ["set", "K"], { interactive: true, prompt: cancel });
    assert.equal(r.code, 1);
    assert.match(r.err, /cancelled; secret K was not changed/);
    assert.equal((await aegis(home, ["get", "K"])).code, 1);
  });
});

Deno.test("secrets set with no pipe, file or terminal explains where values come from", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "K"], { interactive: false });
    assert.equal(r.code, 2);
    assert.match(r.err, /no value given for secret K/);
    assert.match(r.err, /--from-file/);
    assert.deepEqual(r.prompts, []);
  });
});

Deno.test("secrets set refuses a value on the command line without echoing it", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "K", "hunter2"], { stdin: "x" });
    assert.equal(r.code, 2);
    assert.match(r.err, /never taken from the command line/);
    assert.ok(!r.err.includes("hunter2"), r.err);
    assert.equal((await aegis(home, ["get", "K"])).code, 1);
  });
});

Deno.test("secrets set help says values never come from argv", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /never taken from the command line/);
    assert.match(r.out, /--from-file/);
  });
});

Deno.test("secrets set refuses invalid names before reading a value", async () => {
  await withHome(async (home) => {
    for (const name of ["../node.key", ".hidden", "a b", "x".repeat(129)]) {
      const r = await aegis(home, ["set", name], { interactive: true });
      assert.equal(r.code, 2, name);
      assert.match(r.err, /invalid secret name .*not starting with `\.`/);
      assert.deepEqual(r.prompts, []);
    }
  });
});

Deno.test("secrets set refuses a value that is not UTF-8", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["set", "BIN"], { stdin: new Uint8Array([0xff, 0xfe, 0x00]) });
    assert.equal(r.code, 2);
    assert.match(r.err, /not UTF-8 text/);
  });
});

Deno.test("secrets get prints the value exactly, with a newline only on a terminal", async () => {
  await withHome(async (home) => {
    await aegis(home, ["set", "MULTI"], { stdin: "line1\nline2\n\n" });
    const piped = await aegis(home, ["get", "MULTI"]);
    assert.equal(piped.code, 0);
    assert.equal(piped.out, "line1\nline2\n");
    assert.equal(piped.err, "");
    const tty = await aegis(home, ["get", "MULTI"], { stdoutTty: true });
    assert.equal(tty.out, "line1\nline2\n\n");
  });
});

Deno.test("secrets get on a missing secret is NOT_FOUND with a hint to list them", async () => {
  await withHome(async (home) => {
    const r = await aegis(home, ["get", "NOPE"]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.match(r.err, /✖ no secret NOPE on this host/);
    assert.match(r.err, /aegis edge secrets list/);
  });
});

Deno.test("secrets list shows names, sizes and times but never values", async () => {
  await withHome(async (home) => {
    await aegis(home, ["set", "zeta"], { stdin: "zeta-value" });
    await aegis(home, ["set", "ALPHA"], { stdin: "alpha-value-123" });
    const text = await aegis(home, ["list"]);
    assert.equal(text.code, 0);
    const lines = text.out.trimEnd().split("\n");
    assert.match(lines[0], /^NAME\s+BYTES\s+UPDATED$/);
    assert.match(lines[1], /^ALPHA\s+15\s+\d{4}-\d\d-\d\dT/);
    assert.match(lines[2], /^zeta\s+10\s+\d{4}-\d\d-\d\dT/);
    assert.ok(!text.out.includes("value"), text.out);

    const json = await aegis(home, ["list", "--output", "json"]);
    const parsed = JSON.parse(json.out);
    assert.deepEqual(parsed.map((s: { name: string; bytes: number }) => [s.name, s.bytes]), [
      ["ALPHA", 15],
      ["zeta", 10],
    ]);
    assert.ok(!json.out.includes("value"), json.out);
  });
});

Deno.test("secrets list with no secrets says so on stderr", async () => {
  await withHome(async (home) => {
    const text = await aegis(home, ["list"]);
    assert.equal(text.code, 0);
    assert.equal(text.out, "");
    assert.match(text.err, /No secrets on this host/);
    assert.equal((await aegis(home, ["list", "--output", "json"])).out, "[]\n");
  });
});

Deno.test("secrets rm removes a secret; a missing one is NOT_FOUND", async () => {
  await withHome(async (home, dir) => {
    await aegis(home, ["set", "GONE"], { stdin: "x" });
    const r = await aegis(home, ["rm", "GONE"]);
    assert.equal(r.code, 0);
    assert.equal(r.err, "✔ Removed secret GONE\n");
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    const again = await aegis(home, ["rm", "GONE"]);
    assert.equal(again.code, 1);
    assert.match(again.err, /no secret GONE on this host/);
  });
});
