import assert from "node:assert/strict";
import { EdgeConfigSchema } from "../../shared/config/edge_config.ts";
import { checkEnvAllowed, checkLauncherEnv, matchesAny } from "./env_policy.ts";

const config = (edge: Record<string, unknown> = {}) => EdgeConfigSchema.parse({ edge });

/** Each of these makes some common program run code the caller chose (issue 9, item 2). */
const CODE_LOADING = {
  "BASH_FUNC_ls%%": "() { id; }",
  PERL5OPT: "-Mwarnings;system('id')",
  NODE_OPTIONS: "--require /tmp/x.js",
  GIT_CONFIG_COUNT: "1",
  GIT_CONFIG_KEY_0: "core.pager",
  GIT_CONFIG_VALUE_0: "id",
  GCONV_PATH: "/tmp",
  PYTHONWARNINGS: "all:0:antigravity.x:0:0",
  BROWSER: "id",
  SHELLOPTS: "xtrace",
  PS4: "$(id)",
  LD_PRELOAD: "/tmp/x.so",
  LD_LIBRARY_PATH: "/tmp",
  PATH: "/tmp",
  PYTHONPATH: "/tmp",
  BASH_ENV: "/tmp/x",
  IFS: "/",
};

Deno.test("checkEnvAllowed() refuses every code-loading variable by name under the defaults", () => {
  for (const [name, value] of Object.entries(CODE_LOADING)) {
    assert.throws(() => checkEnvAllowed(config(), { [name]: value }), {
      refusal: "ENV_NOT_ALLOWED",
      message: new RegExp(`^setting ${name.replace(/[%$]/g, "\\$&")} is not allowed on this host`),
    } as never);
  }
});

Deno.test("checkEnvAllowed() accepts locale, time zone and terminal by default", () => {
  checkEnvAllowed(config(), { LANG: "C.UTF-8", LC_ALL: "C", TZ: "UTC", TERM: "dumb" });
  checkEnvAllowed(config(), undefined);
});

Deno.test("checkEnvAllowed() puts secrets only where edge.secret_env says", () => {
  const host = config({ env_allow: ["LANG", "PGUSER"], secret_env: ["PGPASSWORD"] });
  checkEnvAllowed(host, { PGUSER: "app", PGPASSWORD: "secret://DB" });
  // An allowed literal variable is not a place for a secret: LANG=secret://X echoes it back.
  for (const name of ["LANG", "PGUSER", "PYTHONWARNINGS"]) {
    assert.throws(() => checkEnvAllowed(host, { [name]: "secret://DB" }), {
      refusal: "ENV_NOT_ALLOWED",
      message: new RegExp(
        `^a secret may not be placed in ${name}: add "${name}" to edge\\.secret_env`,
      ),
    } as never);
  }
  // And a secret-only variable does not take literal values.
  assert.throws(() => checkEnvAllowed(host, { PGPASSWORD: "guess" }), /setting PGPASSWORD/);
});

Deno.test("matchesAny() matches names and prefixes, never odd characters", () => {
  assert.equal(matchesAny(["LC_*"], "LC_ALL"), true);
  assert.equal(matchesAny(["LC_*"], "LC_"), true);
  assert.equal(matchesAny(["LC_*"], "LANG"), false);
  assert.equal(matchesAny(["LANG"], "LANGX"), false);
  assert.equal(matchesAny(["BASH_FUNC_*"], "BASH_FUNC_ls%%"), false);
  assert.equal(matchesAny(["*"], "A B"), false);
});

Deno.test("EdgeConfigSchema refuses an env pattern that is not a name", () => {
  for (const bad of ["BASH_FUNC_x%%", "A*B", "", "1ABC"]) {
    assert.throws(() => config({ env_allow: [bad] }), /env_allow/);
  }
});

Deno.test("checkLauncherEnv() refuses loader variables even when the host allows them", () => {
  for (const name of ["LD_PRELOAD", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES"]) {
    assert.throws(() => checkLauncherEnv({ [name]: "x" }), {
      refusal: "ENV_NOT_ALLOWED",
      message: new RegExp(`^setting ${name} is not allowed while calls run sandboxed`),
    } as never);
  }
  checkLauncherEnv({ LANG: "C" });
});
