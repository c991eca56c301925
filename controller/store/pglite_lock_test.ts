import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { openDb } from "./db.ts";
import { MIGRATIONS } from "./migrations.ts";

const REPO = new URL("../../", import.meta.url);
const DB_MODULE = new URL("./db.ts", import.meta.url).href;

/** Runs `openDb({ dataDir })` in a separate deno process; reports the outcome as JSON. */
async function openInChild(dataDir: string): Promise<Record<string, string>> {
  const code = `
    import { openDb } from ${JSON.stringify(DB_MODULE)};
    try {
      const db = await openDb({ dataDir: ${JSON.stringify(dataDir)} });
      await db.close();
      console.log(JSON.stringify({ ok: "opened" }));
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint }));
    }`;
  // cwd = repo root so the child resolves npm packages through the same deno.json.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  assert.ok(stdout, `child printed nothing; stderr: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(stdout.split("\n").pop()!);
}

Deno.test("openDb() refuses a data dir another process holds, and allows it after close()", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = await openDb({ dataDir: dir });
    const refused = await openInChild(dir);
    assert.deepEqual(refused, {
      code: "CONFLICT",
      message: `the embedded database in ${dir} is in use by another process (pid ${Deno.pid})`,
      hint: "Stop the other aegis-controller, or give this one its own --data-dir.",
    });
    await db.close();
    assert.deepEqual(await openInChild(dir), { ok: "opened" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDb() refuses a second open of one data dir within the same process", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = await openDb({ dataDir: dir });
    const error = await openDb({ dataDir: dir }).catch((e) => e);
    assert.ok(error instanceof AegisError);
    assert.equal(error.code, "CONFLICT");
    assert.match(error.message, /in use by this process/);
    await db.close();
    await (await openDb({ dataDir: dir })).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDb() takes over a data dir whose holder was killed", async () => {
  const dir = await Deno.makeTempDir();
  const code = `
    import { openDb } from ${JSON.stringify(DB_MODULE)};
    await openDb({ dataDir: ${JSON.stringify(dir)} });
    console.log("ready");
    await new Promise(() => {});`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: REPO,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    // Wait for "ready" so the kill lands while the child really holds the lock.
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.equal(new TextDecoder().decode(value).trim(), "ready");
    reader.releaseLock();
    assert.equal((await openInChild(dir)).code, "CONFLICT");
    child.kill("SIGKILL"); // no close(), no cleanup: only the kernel can release the lock
    await child.status;
    await child.stdout.cancel();
    const db = await openDb({ dataDir: dir });
    assert.deepEqual(await db.query("SELECT count(*)::int AS n FROM schema_migrations"), [{
      n: MIGRATIONS.length,
    }]);
    await db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
