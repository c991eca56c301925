import assert from "node:assert/strict";
import { buildEnv } from "./env.ts";
import { ToolRefusal } from "./refusal.ts";

const none = () => Promise.resolve(undefined);

Deno.test("buildEnv() drops the daemon's AEGIS_* variables but keeps the rest", async () => {
  const base = { PATH: "/bin", AEGIS_TOKEN: "t", aegis_home: "h", HOME: "/home/u" };
  const env = await buildEnv({ EXTRA: "1" }, none, base);
  assert.deepEqual(env, { PATH: "/bin", HOME: "/home/u", EXTRA: "1" });
});

Deno.test("buildEnv() lets the call override inherited values", async () => {
  assert.deepEqual(await buildEnv({ PATH: "/opt" }, none, { PATH: "/bin" }), { PATH: "/opt" });
});

Deno.test("buildEnv() resolves secret:// values and only those", async () => {
  const resolve = (name: string) => Promise.resolve(name === "DB" ? "pw" : undefined);
  const env = await buildEnv({ A: "secret://DB", B: "not secret://DB" }, resolve, {});
  assert.deepEqual(env, { A: "pw", B: "not secret://DB" });
});

Deno.test("buildEnv() refuses a secret the backend cannot read, without its value", async () => {
  const broken = () => Promise.reject(new Error("backend sealed"));
  const error = await buildEnv({ A: "secret://DB" }, broken, {}).catch((e) => e);
  assert.ok(error instanceof ToolRefusal);
  assert.equal(error.refusal, "SECRET_UNAVAILABLE");
  assert.match(error.message, /secret "DB" could not be read on this host: backend sealed/);
});
