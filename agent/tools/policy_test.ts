import assert from "node:assert/strict";
import { EdgeConfigSchema, parseEdgeConfig } from "../../shared/config/edge_config.ts";
import { CmdRunArgsSchema } from "./arguments.ts";
import { checkCmdAllowed, isWithin, resolveCwd } from "./policy.ts";
import { ToolRefusal } from "./refusal.ts";

const config = (local_tools: string[]) => EdgeConfigSchema.parse({ local_tools });
const args = (raw: unknown) => CmdRunArgsSchema.parse(raw);

Deno.test({
  name: "isWithin() compares whole path segments",
  // POSIX paths and symlinks; Windows path rules are not exercised on this machine.
  ignore: Deno.build.os === "windows",
  fn() {
    assert.equal(isWithin("/home/u", "/home/u"), true);
    assert.equal(isWithin("/home/u", "/home/u/a/b"), true);
    assert.equal(isWithin("/home/u", "/home/u/..data"), true);
    assert.equal(isWithin("/home/u", "/home/u2"), false);
    assert.equal(isWithin("/home/u", "/home"), false);
    assert.equal(isWithin("/", "/etc"), true);
  },
});

Deno.test("checkCmdAllowed() lets shell permit everything", () => {
  checkCmdAllowed(config(["shell"]), args({ shell: "rm -rf /tmp/x" }));
  checkCmdAllowed(config(["shell"]), args({ argv: ["anything"] }));
});

Deno.test("checkCmdAllowed() permits a listed program named bare, and no other", () => {
  const docker = config(["docker"]);
  checkCmdAllowed(docker, args({ argv: ["docker", "ps"] }));
  for (const path of ["/usr/bin/docker", "C:\\tools\\docker"]) {
    assert.throws(() => checkCmdAllowed(docker, args({ argv: [path, "ps"] })), /names a path/);
  }
  assert.throws(
    () => checkCmdAllowed(docker, args({ argv: ["dockerd"] })),
    (e: unknown) => e instanceof ToolRefusal && e.refusal === "TOOL_NOT_ALLOWED",
  );
  assert.throws(() => checkCmdAllowed(docker, args({ shell: "docker ps" })), /"shell"/);
});

Deno.test("checkCmdAllowed() without shell refuses a path for argv[0]", () => {
  const config = parseEdgeConfig("local_tools: [docker]\n");
  checkCmdAllowed(config, { argv: ["docker", "ps"] } as never);
  assert.throws(() => checkCmdAllowed(config, { argv: ["/tmp/evil/docker"] } as never), {
    message: /names a path; without "shell" in local_tools, name the program bare \("docker"\)/,
  });
});

Deno.test({
  name: "resolveCwd() never runs a call in the state directory, however it is named",
  // Uses symlinks and POSIX paths; Windows path rules are not exercised on this machine.
  ignore: Deno.build.os === "windows",
  async fn() {
    const home = await Deno.realPath(await Deno.makeTempDir());
    try {
      const state = `${home}/.aegis/edge`;
      await Deno.mkdir(`${state}/secrets`, { recursive: true });
      await Deno.symlink(state, `${home}/innocent`);
      // Even a mount point that names the state directory itself grants nothing.
      const config = EdgeConfigSchema.parse({ mount_points: [home, state] });
      for (
        const cwd of [state, `${state}/secrets`, `${home}/innocent`, "innocent/../.aegis/edge"]
      ) {
        await assert.rejects(() => resolveCwd(config, cwd, state), {
          refusal: "CWD_NOT_ALLOWED",
          message: /inside the daemon's state directory/,
        } as never);
      }
      const first = EdgeConfigSchema.parse({ mount_points: [state] });
      await assert.rejects(() => resolveCwd(first, undefined, state), /state directory/);
      assert.equal(await resolveCwd(config, undefined, state), home);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
