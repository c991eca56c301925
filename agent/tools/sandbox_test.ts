import assert from "node:assert/strict";
import { Harness } from "./testing.ts";
import { sandboxStatus } from "./sandbox.ts";
import { findProgram } from "./which.ts";
import type { ToolEventBody } from "./types.ts";

// bubblewrap is Linux-only; where it is installed (CI: Debian's bubblewrap) it must work.
const linuxWithBwrap = {
  ignore: Deno.build.os !== "linux" || !findProgram("bwrap", Deno.env.get("PATH"), "/"),
};

const MARKER = "node-key-material-5d1c";

function exitCode(event: ToolEventBody): number {
  assert.equal(event.case, "exit", JSON.stringify(event, (_, v) => String(v)));
  return (event.value as { exitCode: number }).exitCode;
}

/** Every way a shell might reach the daemon's files: by path, and through the daemon's /proc. */
function snoop(state: string): string {
  const pid = Deno.pid;
  return [
    `cat ${state}/node.key ${state}/node.token ${state}/secrets/DB`,
    `cat /proc/${pid}/root${state}/node.key`,
    `cat /proc/${pid}/cwd/../edge/node.key`,
    `cat /proc/self/../${pid}/environ | tr '\\0' '\\n' | grep ^HOME=`,
    `readlink /proc/${pid}/exe`,
    `cd ${state} && cat node.key`,
    `ls -a ${state}`,
    "exit 0",
  ].join(" 2>/dev/null; ");
}

Deno.test({
  name: "sandboxStatus() finds bubblewrap working on this host",
  ...linuxWithBwrap,
  async fn() {
    const status = await sandboxStatus();
    assert.equal(status.available, true, status.detail);
  },
});

for (const sandbox of ["best-effort", "off"] as const) {
  Deno.test({
    name: `cmd.run with edge.sandbox ${sandbox} ${
      sandbox === "off" ? "can" : "cannot"
    } read node.key, node.token or secrets, by path or through /proc`,
    ...linuxWithBwrap,
    async fn() {
      await using h = await Harness.create({ sandbox });
      const state = `${h.dir}/.aegis/edge`;
      await Deno.mkdir(`${state}/secrets`, { recursive: true });
      for (const file of ["node.key", "node.token", "secrets/DB"]) {
        await Deno.writeTextFile(`${state}/${file}`, `${MARKER} ${file}\n`);
      }
      const code = exitCode(await h.run("cmd.run", { shell: snoop(state) }));
      assert.equal(code, 0);
      const out = h.output("stdout");
      if (sandbox === "off") {
        // The same probes do reach the files without the sandbox: the test can fail.
        assert.match(out, new RegExp(`${MARKER} node.key`));
        assert.match(out, /^HOME=/m);
        assert.ok(out.includes(Deno.execPath()), out);
      } else {
        assert.doesNotMatch(out, new RegExp(MARKER), out);
        assert.doesNotMatch(out, /^HOME=/m, out);
        assert.ok(!out.includes(Deno.execPath()), out);
      }
    },
  });
}

Deno.test({
  name: "a sandboxed call's escaped processes die with it on timeout",
  ...linuxWithBwrap,
  async fn() {
    await using h = await Harness.create();
    const tag = `${Math.floor(Math.random() * 1e6)}.125`;
    // setsid leaves the process group a group kill reaches; the pid namespace still holds it.
    const shell = `setsid sleep ${tag} & sleep ${tag} & wait`;
    const event = await h.run("cmd.run", { shell, timeout_secs: 1 });
    assert.equal(event.case, "exit");
    assert.equal((event.value as { timedOut: boolean }).timedOut, true);
    let live = "";
    for (let i = 0; i < 50; i++) {
      const ps = await new Deno.Command("ps", { args: ["-A", "-o", "stat=,args="] }).output();
      live = new TextDecoder().decode(ps.stdout).split("\n")
        .filter((l) => l.includes(`sleep ${tag}`) && !l.trim().startsWith("Z")).join("\n");
      if (!live) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(live, "", "no sleeper outlives the call");
  },
});
