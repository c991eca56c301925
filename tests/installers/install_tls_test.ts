// A controller on its own TLS port with a private CA (bootstrap.ca_file): the host fetches
// install.sh trusting that CA once, and the script's own downloads trust the CA it carries, with
// curl and with wget alike; without the CA, nothing is downloaded.
import assert from "node:assert/strict";
import { join } from "node:path";
import { startControllerProcess } from "../support/controller.ts";
import { makePrivateCa } from "../support/tls.ts";
import { makeReleaseFixture } from "./release_fixture.ts";
import { install, removeHomes, versionOf } from "./run_install.ts";
import { freePort } from "../support/processes.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A small private CA and a localhost certificate it signed, readable by an unprivileged user. */
async function privateCa(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "aegis-ca-" });
  await Deno.chmod(dir, 0o755);
  await makePrivateCa(dir);
  await Deno.chmod(join(dir, "ca.pem"), 0o644);
  return dir;
}

Deno.test(
  "install.sh over TLS with a private CA: the served script trusts bootstrap.ca_file",
  opts,
  async () => {
    const fixture = await makeReleaseFixture();
    const dir = await privateCa();
    const port = freePort();
    const url = `https://localhost:${port}`;
    const controller = await startControllerProcess({
      port,
      publicEndpoint: `localhost:${port}`,
      tls: { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") },
      yaml: `bootstrap:\n  releases_dir: "${fixture.releasesDir}"\n  ca_file: "${
        join(dir, "ca.pem")
      }"`,
    });
    try {
      // The host trusts the CA once, for the script; the script carries it for the rest.
      const cacert = join(dir, "ca.pem");
      for (
        const [downloader, flags] of [
          ["curl", `--cacert ${cacert}`],
          ["wget", `--ca-certificate=${cacert}`],
        ] as const
      ) {
        const run = await install(url, {
          tools: [downloader, "openssl"],
          downloader,
          fetchFlags: flags,
        });
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stderr, /manifest signature verified \(openssl\)/);
        assert.deepEqual(run.leftovers, []);
        assert.match(
          await versionOf(join(run.installDir, "aegis")),
          new RegExp(`^${fixture.version}\\b`),
        );
      }
      // Enrolling: the host keeps trusting the CA the script carried after the script (and its
      // temporary directory) is gone; the config must not name a file that no longer exists.
      const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cacert)] });
      const issued = await fetch(`${url}/v1/edge/enrollment-tokens`, {
        method: "POST",
        client,
        headers: {
          authorization: `Bearer ${await controller.operatorToken("team-a")}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ name: "tls-host" }),
      });
      assert.equal(issued.status, 201);
      const { token } = await issued.json();
      client.close();
      const enrolled = await install(url, {
        tools: ["curl", "openssl"],
        fetchFlags: `--cacert ${cacert}`,
        args: ["--token", token, "--", "--non-interactive", "--no-service"],
      });
      assert.equal(enrolled.code, 0, enrolled.stderr);
      const config = await Deno.readTextFile(
        join(enrolled.home, ".aegis", "edge", "aegis-config.yaml"),
      );
      const kept = config.match(/ca_file:\s*"?([^"\n]+)"?/)?.[1];
      assert.ok(kept, config);
      assert.equal(await Deno.readTextFile(kept), await Deno.readTextFile(cacert));
      assert.deepEqual(enrolled.leftovers, []);
      // A script fetched without the CA is not fetched at all: TLS is never skipped.
      const refused = await install(url, { tools: ["curl", "openssl"] });
      assert.match(refused.stderr, /certificate/i);
      assert.deepEqual(refused.installed, []);
    } finally {
      await controller.stop();
      await fixture.cleanup();
      await removeHomes();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
