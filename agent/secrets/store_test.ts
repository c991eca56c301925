import assert from "node:assert/strict";
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { modeOf } from "../../shared/fs/atomic.ts";
import {
  getSecret,
  isSecretName,
  listSecrets,
  removeSecret,
  secretResolver,
  setSecret,
} from "./store.ts";

const posix = Deno.build.os !== "windows";

async function withStore(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await fn(join(root, ".aegis", "edge", "secrets"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const invalid = (name: string) => (error: unknown) =>
  error instanceof AegisError && error.code === "INVALID_ARGUMENT" &&
  error.message.includes(JSON.stringify(name)) && error.message.includes("128");

Deno.test("setSecret() writes 0600 files in a 0700 directory", { ignore: !posix }, async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "DB_PASSWORD", "hunter2");
    assert.equal(await modeOf(dir), 0o700);
    assert.equal(await modeOf(join(dir, "DB_PASSWORD")), 0o600);
    assert.equal(await Deno.readTextFile(join(dir, "DB_PASSWORD")), "hunter2");
  });
});

Deno.test("setSecret() replaces a value atomically, leaving no temp files", async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "token", "old");
    const before = await Deno.lstat(join(dir, "token"));
    await setSecret(dir, "token", "new value");
    assert.equal(await getSecret(dir, "token"), "new value");
    const entries = [];
    for await (const entry of Deno.readDir(dir)) entries.push(entry.name);
    assert.deepEqual(entries, ["token"]);
    // Replaced by rename, not rewritten in place: readers never see half a value.
    if (posix) assert.notEqual((await Deno.lstat(join(dir, "token"))).ino, before.ino);
  });
});

Deno.test("getSecret() returns values exactly, empty and multi-line included", async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "empty", "");
    await setSecret(dir, "pem", "-----BEGIN-----\nabc\n-----END-----\n");
    await setSecret(dir, "unicode", "pässwörd ✔");
    assert.equal(await getSecret(dir, "empty"), "");
    assert.equal(await getSecret(dir, "pem"), "-----BEGIN-----\nabc\n-----END-----\n");
    assert.equal(await getSecret(dir, "unicode"), "pässwörd ✔");
    assert.equal(await getSecret(dir, "missing"), undefined);
  });
});

Deno.test("getSecret() and listSecrets() work before the directory exists", async () => {
  await withStore(async (dir) => {
    assert.equal(await getSecret(dir, "x"), undefined);
    assert.deepEqual(await listSecrets(dir), []);
    assert.equal(await removeSecret(dir, "x"), false);
  });
});

Deno.test("getSecret() tightens a loose directory and file", { ignore: !posix }, async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "api_key", "k");
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(join(dir, "api_key"), 0o644);
    assert.equal(await getSecret(dir, "api_key"), "k");
    assert.equal(await modeOf(dir), 0o700);
    assert.equal(await modeOf(join(dir, "api_key")), 0o600);
  });
});

Deno.test("listSecrets() tightens loose files, and never loosens", { ignore: !posix }, async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "a", "1");
    await setSecret(dir, "b", "2");
    await Deno.chmod(dir, 0o777);
    await Deno.chmod(join(dir, "a"), 0o666);
    await Deno.chmod(join(dir, "b"), 0o400);
    await listSecrets(dir);
    assert.equal(await modeOf(dir), 0o700);
    assert.equal(await modeOf(join(dir, "a")), 0o600);
    assert.equal(await modeOf(join(dir, "b")), 0o400);
  });
});

Deno.test("setSecret() tightens an existing loose directory", { ignore: !posix }, async () => {
  await withStore(async (dir) => {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.chmod(dir, 0o775);
    await setSecret(dir, "x", "y");
    assert.equal(await modeOf(dir), 0o700);
  });
});

Deno.test("listSecrets() gives sorted names, sizes and times, never values", async () => {
  await withStore(async (dir) => {
    const start = Date.now() - 2000;
    await setSecret(dir, "zeta", "12345");
    await setSecret(dir, "alpha", "pässwörd");
    await setSecret(dir, "Mid.dle-name_1", "");
    // Leftovers that are not secrets: a temp file of an interrupted write, a directory.
    await Deno.writeTextFile(join(dir, ".zeta.1234.tmp"), "partial");
    await Deno.mkdir(join(dir, "subdir"));
    const list = await listSecrets(dir);
    assert.deepEqual(list.map((s) => [s.name, s.bytes]), [
      ["Mid.dle-name_1", 0],
      ["alpha", 10],
      ["zeta", 5],
    ]);
    for (const s of list) {
      assert.deepEqual(Object.keys(s).sort(), ["bytes", "name", "updated_at"]);
      assert.ok(Date.parse(s.updated_at) >= start, s.updated_at);
    }
  });
});

Deno.test("removeSecret() deletes and reports whether there was one", async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "gone", "x");
    assert.equal(await removeSecret(dir, "gone"), true);
    assert.equal(await removeSecret(dir, "gone"), false);
    assert.equal(await getSecret(dir, "gone"), undefined);
  });
});

Deno.test("secret names follow ^[A-Za-z0-9_.-]{1,128}$ and cannot start with a dot", () => {
  for (const ok of ["a", "A_B", "db.password", "x-1", "9", "a.", "a".repeat(128)]) {
    assert.ok(isSecretName(ok), ok);
  }
  for (const bad of ["", ".", "..", ".hidden", "../node.key", "a/b", "a\\b", "a b", "é", "a\n"]) {
    assert.ok(!isSecretName(bad), JSON.stringify(bad));
  }
  assert.ok(!isSecretName("a".repeat(129)));
});

Deno.test("every store function refuses invalid names with INVALID_ARGUMENT", async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "ok", "x");
    for (const name of ["../ok", ".ok", "", "a".repeat(129), "a/b"]) {
      await assert.rejects(setSecret(dir, name, "v"), invalid(name));
      await assert.rejects(getSecret(dir, name), invalid(name));
      await assert.rejects(removeSecret(dir, name), invalid(name));
    }
  });
});

Deno.test("getSecret() refuses a symlink instead of following it", { ignore: !posix }, async () => {
  await withStore(async (dir) => {
    await setSecret(dir, "real", "x");
    const key = join(dir, "..", "node.key");
    await Deno.writeTextFile(key, "PRIVATE KEY");
    await Deno.symlink(key, join(dir, "link"));
    await assert.rejects(
      getSecret(dir, "link"),
      (e) => e instanceof AegisError && e.code === "CONFIG_INVALID",
    );
    assert.deepEqual((await listSecrets(dir)).map((s) => s.name), ["real"]);
  });
});

Deno.test("secretResolver() reads the current value on every call", async () => {
  await withStore(async (dir) => {
    const resolve = secretResolver(dir);
    assert.equal(await resolve("API_TOKEN"), undefined);
    await setSecret(dir, "API_TOKEN", "v1");
    assert.equal(await resolve("API_TOKEN"), "v1");
    await setSecret(dir, "API_TOKEN", "v2");
    assert.equal(await resolve("API_TOKEN"), "v2");
    await assert.rejects(resolve("../node.key"), invalid("../node.key"));
  });
});
