// End to end: a real controller process, real `aegis` processes under their own HOME, real
// sockets. Runs on PGlite, or on PostgreSQL when AEGIS_TEST_PG_DSN is set.
import assert from "node:assert/strict";
import { startControllerProcess } from "./support/controller.ts";
import { makeHost } from "./support/host.ts";
import { eventually } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] enroll → daemon Connected within one heartbeat, status shows the node`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const host = await makeHost();
    try {
      const { token, command } = await controller.issueEnrollment("team-a", { name: "web-east-1" });
      assert.equal(command, `aegis edge enroll ${token}`);

      const enrolled = await host.aegis(["edge", "enroll", token, "--non-interactive"]);
      assert.equal(enrolled.code, 0, enrolled.stderr);
      const nodeId = enrolled.stdout.match(/✔ Attested as node (n-[0-9a-f]+)/)?.[1];
      assert.ok(nodeId, enrolled.stdout);
      assert.match(enrolled.stdout, /✔ Bootstrap plan complete/);
      assert.match(enrolled.stdout, /├ Wrote {4}~\/\.aegis\/edge\/node\.key \(0600\)/);
      assert.match(enrolled.stdout, /✔ Bound to tenant team-a/);
      assert.match(
        enrolled.stdout,
        new RegExp(`✔ Stream connected to 127\\.0\\.0\\.1:${controller.port}`),
      );
      // No user service manager here: the unit is written and the output says how to start it.
      assert.match(enrolled.stdout, /Wrote {4}~\/\.config\/systemd\/user\/aegis-edge\.service/);
      assert.match(enrolled.stdout, /systemctl --user enable --now aegis-edge\.service/);

      for (
        const [file, mode] of [["node.key", 0o600], ["node.token", 0o600], ["", 0o700], [
          "secrets",
          0o700,
        ]] as const
      ) {
        const info = await Deno.stat(`${host.home}/.aegis/edge/${file}`);
        assert.equal(info.mode! & 0o777, mode, file);
      }
      await assert.rejects(
        Deno.stat(`${host.home}/.aegis/edge/enrollment.jwt`),
        Deno.errors.NotFound,
      );

      const started = Date.now();
      const daemon = host.startDaemon();
      const status = await eventually(async () => {
        const out = await host.aegis(["edge", "status", "--output", "json"]);
        const parsed = JSON.parse(out.stdout);
        return parsed.status === "Connected" ? parsed : undefined;
      }, "status Connected");
      assert.ok(Date.now() - started < 30_000, "connected within one heartbeat interval (30s)");
      assert.deepEqual(Object.keys(status), [
        "node_id",
        "tenant",
        "status",
        "since",
        "endpoint",
        "heartbeat_age",
        "capabilities",
        "labels",
        "key_fingerprint",
        "token_expires",
        "sandbox",
        "auth",
        "last_error",
        "failures",
      ]);
      assert.equal(status.sandbox.mode, "best-effort");
      assert.equal(status.node_id, nodeId);
      assert.equal(status.tenant, "team-a");
      assert.equal(status.endpoint, `127.0.0.1:${controller.port}`);
      assert.equal(status.capabilities.os, Deno.build.os);
      assert.match(status.key_fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      assert.ok(Date.parse(status.token_expires) > Date.now());

      const text = await host.aegis(["edge", "status"]);
      assert.match(text.stdout, /^node_id: +n-[0-9a-f]+$/m);
      assert.match(text.stdout, /^status: +Connected$/m);

      // The operator's view agrees.
      const operator = await controller.operatorToken("team-a", "readonly");
      const hosts = await (await controller.api("/v1/edge/hosts", { token: operator })).json();
      assert.deepEqual(
        hosts.hosts.map((
          h: { node_id: string; status: string; name: string },
        ) => [h.node_id, h.status, h.name]),
        [
          [nodeId, "Connected", "web-east-1"],
        ],
      );

      // The daemon dies: the controller sees it go.
      await daemon.stop();
      const after = await eventually(async () => {
        const out = JSON.parse((await host.aegis(["edge", "status", "--output", "json"])).stdout);
        return out.status === "Disconnected" ? out : undefined;
      }, "status Disconnected");
      assert.equal(after.node_id, nodeId);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a redeemed token is refused on another host with a clear error`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const first = await makeHost();
    const second = await makeHost();
    try {
      const { token } = await controller.issueEnrollment("team-a");
      const ok = await first.aegis(["edge", "enroll", token, "--non-interactive", "--no-service"]);
      assert.equal(ok.code, 0, ok.stderr);

      const replay = await second.aegis([
        "edge",
        "enroll",
        token,
        "--non-interactive",
        "--no-service",
      ]);
      assert.equal(replay.code, 65);
      assert.match(replay.stderr, /✖ this enrollment token was already redeemed/);
      assert.match(replay.stderr, /→ Tokens are one-time use\. Issue a fresh enrollment token\./);
      // Nothing half-done is left that would block a retry with a fresh token.
      await assert.rejects(
        Deno.stat(`${second.home}/.aegis/edge/node.token`),
        Deno.errors.NotFound,
      );

      // A crash after redemption but before node.token was stored: retrying with the same key
      // gets the same node back instead of a second record or a dead token.
      const nodeId = ok.stdout.match(/Attested as node (n-[0-9a-f]+)/)![1];
      await Deno.remove(`${first.home}/.aegis/edge/node.token`);
      const retried = await first.aegis([
        "edge",
        "enroll",
        token,
        "--keep-existing",
        "--no-service",
      ]);
      assert.equal(retried.code, 0, retried.stderr);
      assert.match(retried.stdout, new RegExp(`Attested as node ${nodeId}`));
      // A new key is another identity: the spent token is refused for it.
      const rekeyed = await first.aegis(["edge", "enroll", token, "--force", "--no-service"]);
      assert.equal(rekeyed.code, 65);

      const fresh = await controller.issueEnrollment("team-a");
      // The refused attempt left its config and key; reusing them with a fresh token works.
      const again = await second.aegis([
        "edge",
        "enroll",
        fresh.token,
        "--keep-existing",
        "--no-service",
      ]);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      await first.cleanup();
      await second.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(`[${TEST_DB_KIND}] key/token mismatch is refused with the fix`, opts, async () => {
  const controller = await startControllerProcess();
  const host = await makeHost();
  try {
    const { token } = await controller.issueEnrollment("team-a");
    assert.equal(
      (await host.aegis(["edge", "enroll", token, "--non-interactive", "--no-service"])).code,
      0,
    );
    // A partial clean-up: a new key beside the old token.
    const other = await makeHost();
    const { token: token2 } = await controller.issueEnrollment("team-a");
    assert.equal(
      (await other.aegis(["edge", "enroll", token2, "--non-interactive", "--no-service"])).code,
      0,
    );
    await Deno.copyFile(`${other.home}/.aegis/edge/node.key`, `${host.home}/.aegis/edge/node.key`);
    await other.cleanup();

    const status = await host.aegis(["edge", "status"]);
    assert.equal(status.code, 65);
    assert.match(
      status.stderr,
      /node\.token \(node n-[0-9a-f]+\) is bound to key SHA256:\S+, but node\.key is SHA256:/,
    );
    assert.match(
      status.stderr,
      /Delete ~\/\.aegis\/edge\/node\.key\* and ~\/\.aegis\/edge\/node\.token/,
    );

    const { token: token3 } = await controller.issueEnrollment("team-a");
    const keep = await host.aegis(["edge", "enroll", token3, "--keep-existing", "--no-service"]);
    assert.equal(keep.code, 65);
    assert.match(
      keep.stderr,
      /node\.token \(node n-[0-9a-f]+\) does not belong to node\.key, so it cannot be reused/,
    );
    assert.match(keep.stderr, /then run `aegis edge enroll <fresh-token>`/);
  } finally {
    await host.cleanup();
    await controller.stop();
  }
});
