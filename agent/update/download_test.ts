import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parseEndpoint } from "../../shared/endpoint.ts";
import { edgePaths } from "../state/paths.ts";
import { downloadArtifact } from "./download.ts";
import { updateLayout } from "./layout.ts";
import type { ReleaseSource } from "./release_source.ts";

const BODY = new TextEncoder().encode("#!/bin/sh\necho 1.1.0\n");
const SHA = createHash("sha256").update(BODY).digest("hex");

/** A real local server: `/releases/latest/<file>` answers with `body(file)`. */
async function withServer(
  body: (file: string) => Response,
  test: (source: ReleaseSource, home: string) => Promise<void>,
) {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (request) => {
    const file = new URL(request.url).pathname.split("/").pop()!;
    return body(file);
  });
  const home = await Deno.makeTempDir({ prefix: "aegis-download-" });
  try {
    const source = {
      endpoints: [parseEndpoint(`http://127.0.0.1:${server.addr.port}`)],
      close() {},
    };
    await test(source, home);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
}

const artifact = (over: Partial<{ size: number; sha256: string }> = {}) => ({
  name: "aegis" as const,
  os: "linux" as const,
  arch: "x86_64" as const,
  file: "aegis-1.1.0-linux-x86_64",
  size: BODY.length,
  sha256: SHA,
  ...over,
});

async function leftovers(home: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(updateLayout(edgePaths(home)).versions)) {
    names.push(entry.name);
  }
  return names;
}

Deno.test("downloadArtifact() keeps a file whose size and SHA-256 match the manifest", async () => {
  await withServer(() => new Response(BODY), async (source, home) => {
    const staged = await downloadArtifact(source, updateLayout(edgePaths(home)), artifact());
    assert.deepEqual(await Deno.readFile(staged.binary), BODY);
    await staged.discard();
  });
});

Deno.test("downloadArtifact() refuses a wrong hash and leaves nothing behind", async () => {
  await withServer(() => new Response(BODY), async (source, home) => {
    await assert.rejects(
      () =>
        downloadArtifact(
          source,
          updateLayout(edgePaths(home)),
          artifact({ sha256: "0".repeat(64) }),
        ),
      /does not match the signed manifest/,
    );
    assert.deepEqual(await leftovers(home), []);
  });
});

Deno.test("downloadArtifact() stops at the manifest's size, declared or streamed", async () => {
  const declared = () => new Response(BODY);
  const streamed = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(BODY);
          c.enqueue(BODY);
          c.close();
        },
      }),
    );
  for (const body of [declared, streamed]) {
    await withServer(body, async (source, home) => {
      await assert.rejects(
        () => downloadArtifact(source, updateLayout(edgePaths(home)), artifact({ size: 10 })),
        /larger than the 10 bytes allowed/,
      );
      assert.deepEqual(await leftovers(home), []);
    });
  }
});

Deno.test("downloadArtifact() starts over on the next endpoint when one breaks off mid-body", async () => {
  const broken = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(BODY.subarray(0, 5));
          c.error(new Error("connection reset"));
        },
      }),
    ));
  await withServer(() => new Response(BODY), async (good, home) => {
    const source = {
      endpoints: [parseEndpoint(`http://127.0.0.1:${broken.addr.port}`), ...good.endpoints],
      close() {},
    };
    try {
      const staged = await downloadArtifact(source, updateLayout(edgePaths(home)), artifact());
      assert.deepEqual(await Deno.readFile(staged.binary), BODY);
      await staged.discard();
    } finally {
      await broken.shutdown();
    }
  });
});
