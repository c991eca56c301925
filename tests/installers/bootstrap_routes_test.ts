// The unauthenticated bootstrap endpoints on a real controller: what is served, what is refused
// (nothing configured, unknown versions, names outside the manifest, traversal in any encoding),
// HEAD and Content-Length.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { startControllerProcess } from "../support/controller.ts";
import { makeReleaseFixture } from "./release_fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** One request exactly as written: no client normalises the path first. */
async function rawGet(port: number, path: string): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    ),
  );
  const text = await new Response(conn.readable).text();
  return { status: Number(text.split(" ")[1]), text };
}

Deno.test(
  "bootstrap routes: a controller with no releases says so in plain text",
  opts,
  async () => {
    const controller = await startControllerProcess();
    try {
      const url = `http://127.0.0.1:${controller.port}`;
      const sh = await fetch(`${url}/install.sh`);
      assert.equal(sh.status, 404);
      const body = await sh.text();
      // Piped into sh without curl -f, the answer still only prints the reason and fails.
      assert.match(body, /^echo 'aegis-controller: this controller serves no releases/);
      assert.match(body, /bootstrap\.releases_dir/);
      const ps1 = await fetch(`${url}/install.ps1`);
      assert.equal(ps1.status, 404);
      assert.match(
        await ps1.text(),
        /^throw 'aegis-controller: this controller serves no releases/,
      );
      const file = await fetch(`${url}/releases/latest/manifest.json`);
      assert.equal(file.status, 404);
      assert.match(file.headers.get("content-type")!, /^text\/plain/);
      assert.equal(file.headers.get("x-content-type-options"), "nosniff");
      assert.match(await file.text(), /serves no releases/);
    } finally {
      await controller.stop();
    }
  },
);

Deno.test("bootstrap routes: scripts, files, HEAD, Content-Length and refusals", opts, async () => {
  const fixture = await makeReleaseFixture();
  const ca = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(
    ca,
    "-----BEGIN CERTIFICATE-----\nMIIBfakeCAbytesAAAA\n-----END CERTIFICATE-----\n" +
      "-----BEGIN PRIVATE KEY-----\nMIInotServed\n-----END PRIVATE KEY-----\n",
  );
  const dir = join(fixture.releasesDir, fixture.version);
  // A file in the release directory that the manifest does not name is never served.
  await Deno.writeTextFile(join(dir, "notes.txt"), "private");
  const controller = await startControllerProcess({
    yaml: [
      "bootstrap:",
      `  releases_dir: "${fixture.releasesDir}"`,
      `  public_url: "https://aegis.example.com/"`,
      `  ca_file: "${ca}"`,
    ].join("\n"),
  });
  try {
    const url = `http://127.0.0.1:${controller.port}`;
    const sh = await (await fetch(`${url}/install.sh`)).text();
    assert.match(sh, /served_url='https:\/\/aegis\.example\.com'/);
    assert.match(sh, new RegExp(`served_version='${fixture.version}'`));
    assert.ok(sh.includes(`served_pubkey='${fixture.publicKey}'`));
    assert.match(sh, /served_ca='-----BEGIN CERTIFICATE-----\nMIIBfakeCAbytesAAAA/);
    assert.doesNotMatch(sh, /PRIVATE KEY/);

    const byAgent = async (agent: string) =>
      await (await fetch(`${url}/`, { headers: { "user-agent": agent } })).text();
    assert.equal(await byAgent("curl/8.5.0"), sh);
    assert.equal(await byAgent("Wget/1.21.4"), sh);
    const ps1 = await byAgent(
      "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.4391",
    );
    assert.match(ps1, /\$servedUrl = 'https:\/\/aegis\.example\.com'/);
    assert.equal(ps1, await (await fetch(`${url}/install.ps1`)).text());
    // A browser opening the controller's URL goes to the web console; the one-liners are at /install.
    const browser = await fetch(`${url}/`, {
      headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0" },
      redirect: "manual",
    });
    await browser.body?.cancel();
    assert.equal(browser.status, 303);
    assert.equal(browser.headers.get("location"), "/console/");
    const page = await (await fetch(`${url}/install`)).text();
    assert.match(page, /curl -fsSL 'https:\/\/aegis\.example\.com\/install\.sh' \| sh/);
    assert.match(page, /iwr -useb 'https:\/\/aegis\.example\.com\/install\.ps1' \| iex/);

    for (const version of ["latest", fixture.version]) {
      for (const artifact of fixture.manifest.artifacts) {
        const path = `${url}/releases/${version}/${artifact.file}`;
        const head = await fetch(path, { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("content-length"), String(artifact.size));
        assert.equal((await head.arrayBuffer()).byteLength, 0);
        const get = await fetch(path);
        assert.equal(get.headers.get("content-length"), String(artifact.size));
        assert.equal(get.headers.get("content-type"), "application/octet-stream");
        const bytes = new Uint8Array(await get.arrayBuffer());
        assert.equal(createHash("sha256").update(bytes).digest("hex"), artifact.sha256);
      }
      for (const name of ["manifest.json", "manifest.json.minisig", "SHA256SUMS", "release.pub"]) {
        const get = await fetch(`${url}/releases/${version}/${name}`);
        assert.equal(get.status, 200, name);
        assert.equal(await get.text(), await Deno.readTextFile(join(dir, name)));
      }
    }
    const latest = await fetch(`${url}/releases/latest/manifest.json`, { method: "HEAD" });
    assert.equal(latest.headers.get("cache-control"), "no-cache");

    const refused = [
      "/releases/latest/notes.txt",
      "/releases/9.9.9/manifest.json",
      "/releases/latest/..%2Fmanifest.json",
      "/releases/latest/..%2F..%2F..%2Fetc%2Fpasswd",
      "/releases/latest/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      `/releases/..%2F${fixture.version}/manifest.json`,
      "/releases/..%2F..%2Fetc/passwd",
      "/releases/latest/.%2Fmanifest.json",
    ];
    for (const path of refused) {
      const answer = await rawGet(controller.port, path);
      assert.equal(answer.status, 404, `${path}: ${answer.text}`);
      assert.doesNotMatch(answer.text, /root:|"artifacts"|private/);
    }
    // A control character is refused before any route looks at the path.
    const nul = await rawGet(controller.port, "/releases/latest/manifest.json%00");
    assert.equal(nul.status, 400, nul.text);
    assert.match(nul.text, /control character/);
    assert.doesNotMatch(nul.text, /"artifacts"/);
  } finally {
    await controller.stop();
    await fixture.cleanup();
    await Deno.remove(ca);
  }
});
