import assert from "node:assert/strict";
import { Command } from "@commander-js/extra-typings";
import { type Io, reportError } from "../../shared/cli/io.ts";
import { registerTags } from "./tags.ts";

interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  body: unknown;
}

/** A stand-in controller: answers each request with `reply` and records what it got. */
async function withController(
  reply: (seen: Seen) => Response,
  fn: (endpoint: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const entry = {
      method: req.method,
      path: new URL(req.url).pathname,
      authorization: req.headers.get("authorization"),
      body: await req.json(),
    };
    seen.push(entry);
    return reply(entry);
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, seen);
  } finally {
    await server.shutdown();
  }
}

/** Runs `aegis edge tags ...` in-process the way agent/main.ts does. */
async function aegis(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), interactive: false };
  let code = 0;
  const program = new Command("aegis").exitOverride().configureOutput({
    writeOut: io.out,
    writeErr: io.err,
  });
  registerTags(program.command("edge"), { io, setExit: (c) => code = c });
  try {
    await program.parseAsync(["edge", "tags", ...args], { from: "user" });
  } catch (error) {
    const commander = (error as { code?: string }).code?.startsWith("commander.");
    code = commander ? (error as { exitCode: number }).exitCode : reportError(io, error);
  }
  return { code, out, err };
}

const echo = (seen: Seen) =>
  Response.json({ node_id: "n-7a", tags: [...(seen.body as { tags: string[] }).tags, "z"] });

Deno.test("tags add posts the tags and prints the host's new list", async () => {
  await withController(echo, async (endpoint, seen) => {
    const r = await aegis(["add", "n-7a", "web", "eu", "--endpoint", endpoint, "--token", "jwt"]);
    assert.deepEqual(r, { code: 0, out: "✔ n-7a tags: [web, eu, z]\n", err: "" });
    assert.deepEqual(seen, [{
      method: "POST",
      path: "/v1/edge/hosts/n-7a/tags",
      authorization: "Bearer jwt",
      body: { tags: ["web", "eu"] },
    }]);
  });
});

Deno.test("tags rm sends DELETE with the tags and prints JSON on --output json", async () => {
  await withController(echo, async (endpoint, seen) => {
    const args = ["n-7a", "web", "--output", "json", "--endpoint", endpoint, "--token", "jwt"];
    const r = await aegis(["rm", ...args]);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), { node_id: "n-7a", tags: ["web", "z"] });
    assert.equal(seen[0].method, "DELETE");
    assert.deepEqual(seen[0].body, { tags: ["web"] });
    assert.equal((await aegis(["remove", ...args])).code, 0, "remove is an alias of rm");
  });
});

Deno.test("tags add reports the controller's error with its exit status", async () => {
  const notFound = () =>
    Response.json({ error: { code: "NOT_FOUND", message: "no edge host n-9" } }, { status: 404 });
  await withController(notFound, async (endpoint) => {
    const r = await aegis(["add", "n-9", "web", "--endpoint", endpoint, "--token", "jwt"]);
    assert.deepEqual(r, { code: 1, out: "", err: "✖ no edge host n-9\n" });
  });
});
