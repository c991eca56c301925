// The seed's deployment shape: Caddy terminates TLS and speaks h2c to the controller's port.
// A host enrolls against `localhost:<port>` (TLS) trusting Caddy's local CA with --ca-file, the
// daemon streams through the proxy, and the CA stays in the host's config for later commands.
import assert from "node:assert/strict";
import { startControllerProcess } from "./support/controller.ts";
import { makeHost } from "./support/host.ts";
import { Background, eventually, freePort } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";
import { makePrivateCa } from "./support/tls.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] enrollment and the stream work through Caddy (TLS → h2c)`,
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "aegis-caddy-" });
    const port = freePort();
    const controller = await startControllerProcess({ publicEndpoint: `localhost:${port}` });
    const host = await makeHost();
    let caddy: Background | undefined;
    try {
      await Deno.writeTextFile(
        `${dir}/Caddyfile`,
        `{
  admin off
  grace_period 1s
  skip_install_trust
  storage file_system ${dir}/data
  http_port ${freePort()}
}
localhost:${port} {
  bind 127.0.0.1
  tls internal
  reverse_proxy 127.0.0.1:${controller.port} {
    transport http {
      versions h2c
    }
  }
}
`,
      );
      caddy = new Background("", [], {}, [
        "caddy",
        "run",
        "--config",
        `${dir}/Caddyfile`,
        "--adapter",
        "caddyfile",
      ]);
      const rootCa = `${dir}/data/pki/authorities/local/root.crt`;
      await eventually(
        async () => (await Deno.stat(rootCa)).isFile || undefined,
        "Caddy's local CA",
        20_000,
      );
      await eventually(
        async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conn.close();
          return true;
        },
        "Caddy listening",
        20_000,
      );

      const { token } = await controller.issueEnrollment("team-a");
      // Without the CA the host refuses the proxy's certificate, and says how to fix it.
      const untrusted = await host.aegis([
        "edge",
        "enroll",
        token,
        "--non-interactive",
        "--no-service",
      ]);
      assert.equal(untrusted.code, 69, untrusted.stderr);
      assert.match(untrusted.stderr, new RegExp(`✖ TLS with localhost:${port} failed`));
      assert.match(untrusted.stderr, /--ca-file/);

      const enrolled = await host.aegis([
        "edge",
        "enroll",
        token,
        "--keep-existing",
        "--no-service",
        "--ca-file",
        rootCa,
      ]);
      assert.equal(enrolled.code, 0, enrolled.stderr);
      assert.match(enrolled.stdout, new RegExp(`✔ Stream connected to localhost:${port}`));
      const config = await Deno.readTextFile(`${host.home}/.aegis/edge/aegis-config.yaml`);
      assert.match(config, new RegExp(`ca_file: ${rootCa.replaceAll("/", "\\/")}`));

      const daemon = host.startDaemon();
      await daemon.waitFor(new RegExp(`stream connected to localhost:${port}`));
      const status = JSON.parse((await host.aegis(["edge", "status", "--output", "json"])).stdout);
      assert.equal(status.status, "Connected");
      assert.equal(status.endpoint, `localhost:${port}`);
    } finally {
      await caddy?.stop();
      await host.cleanup();
      await controller.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] the controller's own TLS port serves the stream (h2 by ALPN) and REST (HTTP/1.1)`,
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "aegis-tls-" });
    await makePrivateCa(dir);
    const port = freePort();
    const controller = await startControllerProcess({
      port,
      publicEndpoint: `localhost:${port}`,
      tls: { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` },
    });
    const host = await makeHost();
    try {
      const admin = await controller.operatorToken("team-a");
      const client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)],
        http2: false,
      });
      const issued = await fetch(`https://localhost:${port}/v1/edge/enrollment-tokens`, {
        method: "POST",
        client,
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(issued.status, 201);
      const { token } = await issued.json();
      client.close();

      const enrolled = await host.aegis([
        "edge",
        "enroll",
        token,
        "--no-service",
        "--ca-file",
        `${dir}/ca.pem`,
      ]);
      assert.equal(enrolled.code, 0, enrolled.stderr);
      assert.match(enrolled.stdout, new RegExp(`✔ Stream connected to localhost:${port}`));
      const daemon = host.startDaemon();
      await daemon.waitFor(new RegExp(`stream connected to localhost:${port}`));
    } finally {
      await host.cleanup();
      await controller.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
