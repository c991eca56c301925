import assert from "node:assert/strict";
import { decideTools, describeGrant, parseLocalTools, runsAnyCommand } from "./tools_grant.ts";

const detected = ["shell", "docker", "git"];

Deno.test("decideTools() grants nothing without a flag, a person or an existing config", async () => {
  const grant = await decideTools({ detected, tenant: "t" });
  assert.deepEqual(grant, { granted: [], detected, source: "default" });
  assert.equal(
    describeGrant(grant, "t"),
    "none granted (on PATH: shell, docker, git); grant with --local-tools or in local_tools",
  );
});

Deno.test("decideTools() takes --local-tools over an existing config and the prompt", async () => {
  const prompt = () => Promise.reject(new Error("must not prompt"));
  const grant = await decideTools({
    flag: ["git"],
    detected,
    existing: ["shell"],
    tenant: "t",
    prompt,
  });
  assert.deepEqual(grant.granted, ["git"]);
  const kept = await decideTools({ detected, existing: ["shell"], tenant: "t", prompt });
  assert.deepEqual(kept, { granted: ["shell"], detected, source: "existing" });
});

Deno.test("decideTools() shows every suggestion, marks the shell-equivalent ones, keeps the choice", async () => {
  let shown: { value: string; name: string }[] = [];
  const grant = await decideTools({
    detected,
    tenant: "team-a",
    prompt: (question, choices) => {
      assert.match(question, /tenant team-a's operators/);
      shown = choices;
      return Promise.resolve(["docker"]);
    },
  });
  assert.deepEqual(shown.map((c) => c.value), detected);
  assert.ok(shown.every((c) => /ANY command/.test(c.name)));
  assert.deepEqual(grant, { granted: ["docker"], detected, source: "prompt" });
  assert.match(
    describeGrant(grant, "team-a"),
    /^docker: this host will run ANY command for tenant team-a's operators/,
  );
});

Deno.test("parseLocalTools() reads a comma list, 'none', and refuses paths", () => {
  assert.deepEqual(parseLocalTools("shell, git,git"), ["shell", "git"]);
  assert.deepEqual(parseLocalTools("none"), []);
  assert.deepEqual(parseLocalTools(""), []);
  for (const bad of ["/usr/bin/git", "a b", "../x"]) {
    assert.throws(() => parseLocalTools(bad), { code: "INVALID_ARGUMENT" } as never);
  }
});

Deno.test("runsAnyCommand() names interpreters, git, find and docker, not plain programs", () => {
  assert.deepEqual(runsAnyCommand(["shell", "python3", "git", "find", "docker", "uptime", "df"]), [
    "shell",
    "python3",
    "git",
    "find",
    "docker",
  ]);
});
