import assert from "node:assert/strict";
import { CmdRunArgsSchema, EchoArgsSchema, parseArguments } from "./arguments.ts";
import { ToolRefusal } from "./refusal.ts";

function refusalOf(fn: () => unknown): ToolRefusal {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ToolRefusal);
    return error;
  }
  assert.fail("expected a refusal");
}

Deno.test("parseArguments() fills cmd.run defaults", () => {
  const args = parseArguments("cmd.run", '{"argv":["ls"]}', CmdRunArgsSchema);
  assert.equal(args.timeout_secs, 30);
  assert.equal(args.max_output_bytes, 1024 * 1024);
});

Deno.test("parseArguments() names the offending fields", () => {
  const json = JSON.stringify({ argv: [], timeout_secs: 0, max_output_bytes: 2 ** 40 });
  const refusal = refusalOf(() => parseArguments("cmd.run", json, CmdRunArgsSchema));
  assert.equal(refusal.refusal, "INVALID_ARGUMENTS");
  assert.match(refusal.message, /argv:/);
  assert.match(refusal.message, /timeout_secs:/);
  assert.match(refusal.message, /max_output_bytes:/);
});

Deno.test("parseArguments() refuses unknown fields by name", () => {
  const json = JSON.stringify({ shell: "true", timeout: 5 });
  assert.match(
    refusalOf(() => parseArguments("cmd.run", json, CmdRunArgsSchema)).message,
    /timeout/,
  );
});

Deno.test("parseArguments() wants exactly one of argv and shell", () => {
  for (const json of ["{}", JSON.stringify({ argv: ["ls"], shell: "ls" })]) {
    const refusal = refusalOf(() => parseArguments("cmd.run", json, CmdRunArgsSchema));
    assert.match(refusal.message, /exactly one of argv or shell/);
  }
});

Deno.test("parseArguments() refuses malformed JSON and bad env names", () => {
  assert.match(
    refusalOf(() => parseArguments("echo", "{", EchoArgsSchema)).message,
    /not valid JSON/,
  );
  const json = JSON.stringify({ argv: ["env"], env: { "A=B": "x" } });
  assert.match(refusalOf(() => parseArguments("cmd.run", json, CmdRunArgsSchema)).message, /env/);
});

Deno.test("parseArguments() treats an empty string as no arguments", () => {
  assert.deepEqual(parseArguments("echo", "", EchoArgsSchema), {});
});
