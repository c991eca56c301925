// End to end: key rotation, token refresh and remote revocation with real processes.
import assert from "node:assert/strict";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { randomBytes } from "../shared/crypto/encoding.ts";
import { sealEnvelope } from "../shared/crypto/envelope.ts";
import { rotationBytes } from "../shared/crypto/signed_bytes.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { fromConnectError } from "../shared/rpc_errors.ts";
import { decodeNodeToken } from "../shared/tokens/claims.ts";
import { createNodeClient } from "../agent/client/node_client.ts";
import { type ControllerProcess, startControllerProcess } from "./support/controller.ts";
import { enrollNewHost, type Host } from "./support/host.ts";
import { AGENT_MAIN, Background, eventually, runDeno } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

async function enrolledHost(
  controller: ControllerProcess,
): Promise<{ host: Host; nodeId: string }> {
  const { host, nodeId } = await enrollNewHost(controller);
  // Heartbeat every second, so "the next heartbeat" comes quickly in tests.
  const configPath = `${host.home}/.aegis/edge/aegis-config.yaml`;
  const config = await Deno.readTextFile(configPath);
  await Deno.writeTextFile(
    configPath,
    config.replace("heartbeat_interval_secs: 30", "heartbeat_interval_secs: 1"),
  );
  return { host, nodeId };
}

interface Credentials {
  key: NodePrivateKey;
  token: string;
}

async function credentials(host: Host): Promise<Credentials> {
  return {
    key: NodePrivateKey.fromPem(await Deno.readTextFile(`${host.home}/.aegis/edge/node.key`)),
    token: (await Deno.readTextFile(`${host.home}/.aegis/edge/node.token`)).trim(),
  };
}

/** Asks the controller about the node with these credentials: its code on refusal, else "ok". */
async function describeWith(
  controller: ControllerProcess,
  creds: Credentials,
  signer = creds.key,
): Promise<string> {
  const client = await createNodeClient(parseEndpoint(controller.endpoint));
  try {
    await client.describeNode(sealEnvelope({
      key: signer,
      token: creds.token,
      nodeId: decodeNodeToken(creds.token).sub,
      streamNonce: randomBytes(16),
      seq: 1n,
      body: { case: "describe", value: {} as never },
    }));
    return "ok";
  } catch (error) {
    return fromConnectError(error).code;
  } finally {
    client.close();
  }
}

async function rotateWith(
  controller: ControllerProcess,
  creds: Credentials,
  request: {
    newKey: NodePrivateKey;
    possessionSigner?: NodePrivateKey;
    envelopeSigner?: NodePrivateKey;
    nonce?: Uint8Array;
  },
) {
  const nodeId = decodeNodeToken(creds.token).sub;
  const nonce = request.nonce ?? randomBytes(16);
  const signed = rotationBytes(
    nodeId,
    creds.key.publicKey.bytes,
    request.newKey.publicKey.bytes,
    nonce,
  );
  const envelope = sealEnvelope({
    key: request.envelopeSigner ?? creds.key,
    token: creds.token,
    nodeId,
    streamNonce: nonce,
    seq: 1n,
    body: {
      case: "rotate",
      value: {
        newPublicKey: request.newKey.publicKey.bytes,
        newKeySignature: (request.possessionSigner ?? request.newKey).sign(signed),
      } as never,
    },
  });
  const client = await createNodeClient(parseEndpoint(controller.endpoint));
  try {
    const response = await client.rotateEdgeKey(envelope);
    return { ok: true as const, token: response.nodeSecurityToken, envelope };
  } catch (error) {
    const aegis = fromConnectError(error);
    return { ok: false as const, code: aegis.code, message: aegis.message, envelope };
  } finally {
    client.close();
  }
}

async function status(host: Host) {
  const out = await host.aegis(["edge", "status", "--output", "json"]);
  return JSON.parse(out.stdout);
}

Deno.test(
  `[${TEST_DB_KIND}] rotation under a running cmd.run: the call completes, old token refused, new accepted`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const before = await credentials(host);
      const fingerprintBefore = (await status(host)).key_fingerprint;
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const env = {
        AEGIS_ENDPOINT: controller.endpoint,
        AEGIS_TOKEN: await controller.operatorToken("team-a", "operator"),
      };
      const call = new Background(
        AGENT_MAIN,
        ["edge", "exec", nodeId, "--", "sh", "-c", "sleep 5; echo finished"],
        { ...env, HOME: host.home },
      );
      await new Promise((r) => setTimeout(r, 1500));

      const operator = await controller.operatorToken("team-a", "readonly");
      const viewBefore =
        await (await controller.api(`/v1/edge/hosts/${nodeId}`, { token: operator })).json();
      const rotated = await host.aegis(["edge", "keys", "rotate", "--keep-old", "1h"]);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.match(rotated.stdout, new RegExp(`✔ Rotated the key of node ${nodeId}`));
      assert.match(rotated.stdout, /archived for 1h/);

      assert.equal((await call.child.status).code, 0, call.stderr);
      await call.stop();
      assert.equal(call.stdout, "finished\n");

      assert.equal(await describeWith(controller, before), "NODE_TOKEN_INVALID");
      const after = await credentials(host);
      assert.equal(await describeWith(controller, after), "ok");
      const shown = await status(host);
      assert.notEqual(shown.key_fingerprint, fingerprintBefore);
      assert.equal(shown.key_fingerprint, await after.key.publicKey.fingerprint());
      assert.equal(shown.status, "Connected");
      const archived = [...Deno.readDirSync(`${host.home}/.aegis/edge/archive`)].map((e) => e.name);
      assert.ok(
        archived.some((n) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.key$/.test(n)),
        archived.join(),
      );

      // The stream was not dropped: the daemon moved to the new key on its next heartbeat.
      await new Promise((r) => setTimeout(r, 2500));
      assert.doesNotMatch(daemon.stderr, /stream to .* (failed|ended)/);
      const view = await (await controller.api(`/v1/edge/hosts/${nodeId}`, { token: operator }))
        .json();
      assert.equal(view.status, "Connected");
      assert.equal(view.reconnects, viewBefore.reconnects);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] rotation attacks and replays are refused, and change nothing`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host } = await enrolledHost(controller);
    try {
      const creds = await credentials(host);
      const attacker = NodePrivateKey.generate();

      // A new key without its own signature (the attacker supplies a key it does not hold).
      const noPossession = await rotateWith(controller, creds, {
        newKey: attacker,
        possessionSigner: creds.key,
      });
      assert.deepEqual([noPossession.ok, !noPossession.ok && noPossession.code], [
        false,
        "SIGNATURE_INVALID",
      ]);
      assert.match(!noPossession.ok ? noPossession.message : "", /proof of possession failed/);

      // A rotation not signed by the current key (a stolen token alone is not authority).
      const noAuthority = await rotateWith(controller, creds, {
        newKey: attacker,
        envelopeSigner: attacker,
      });
      assert.deepEqual([noAuthority.ok, !noAuthority.ok && noAuthority.code], [
        false,
        "SIGNATURE_INVALID",
      ]);
      assert.equal(
        await describeWith(controller, creds),
        "ok",
        "the current credentials still work",
      );

      // A genuine rotation, then the same request again.
      const newKey = NodePrivateKey.generate();
      const genuine = await rotateWith(controller, creds, { newKey });
      assert.ok(genuine.ok);
      const client = await createNodeClient(parseEndpoint(controller.endpoint));
      const replay = await client.rotateEdgeKey(genuine.envelope).then(
        () => "accepted",
        (e) => fromConnectError(e).code,
      );
      client.close();
      assert.equal(replay, "REPLAYED");
      assert.equal(
        await describeWith(controller, { key: newKey, token: genuine.ok ? genuine.token : "" }),
        "ok",
      );
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

for (
  const fault of [
    "rotate.key_written:crash",
    "rotate.before_rpc:crash",
    "rotate.after_rpc:crash",
    "rotate.token_saved:crash",
  ]
) {
  Deno.test(
    `[${TEST_DB_KIND}] a crash at ${fault.split(":")[0]} leaves a host that still connects`,
    opts,
    async () => {
      const controller = await startControllerProcess();
      const { host, nodeId } = await enrolledHost(controller);
      try {
        const crashed = await runDeno(AGENT_MAIN, ["edge", "keys", "rotate"], {
          HOME: host.home,
          AEGIS_TEST_FAULTS: fault,
        });
        assert.equal(crashed.code, 99, crashed.stderr);
        const daemon = host.startDaemon();
        await daemon.waitFor(/stream connected/, 30_000);
        const token = await controller.operatorToken("team-a", "readonly");
        await eventually(async () => {
          const view = await (await controller.api(`/v1/edge/hosts/${nodeId}`, { token })).json();
          return view.status === "Connected" || undefined;
        }, "Connected");
        // And a later rotation goes through (reusing the pending key where there was one).
        const again = await host.aegis(["edge", "keys", "rotate"]);
        assert.equal(again.code, 0, again.stderr);
        assert.equal(await describeWith(controller, await credentials(host)), "ok");
      } finally {
        await host.cleanup();
        await controller.stop();
      }
    },
  );
}

Deno.test(
  `[${TEST_DB_KIND}] a controller failing inside the rotation commits nothing`,
  opts,
  async () => {
    const controller = await startControllerProcess({
      faults: "controller.rotate.after_key_update",
    });
    const { host } = await enrolledHost(controller);
    try {
      const creds = await credentials(host);
      const fingerprint = await creds.key.publicKey.fingerprint();
      const failed = await host.aegis(["edge", "keys", "rotate"]);
      assert.notEqual(failed.code, 0);
      assert.equal(await describeWith(controller, creds), "ok", "the old key and token still work");
      assert.equal((await status(host)).key_fingerprint, fingerprint);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] token refresh; revoke-remote drops the stream within a second; re-enrollment works`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const before = await credentials(host);
      const refreshed = await host.aegis(["edge", "token", "refresh"]);
      assert.equal(refreshed.code, 0, refreshed.stderr);
      assert.match(
        refreshed.stdout,
        /✔ New token for node n-[0-9a-f]+, expires \S+; the old one is revoked/,
      );
      assert.equal(await describeWith(controller, before), "NODE_TOKEN_INVALID");
      const after = await credentials(host);
      assert.equal(await describeWith(controller, after), "ok");
      assert.ok(before.key.publicKey.equals(after.key.publicKey), "refresh keeps the key");

      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/);
      const env = {
        HOME: host.home,
        AEGIS_ENDPOINT: controller.endpoint,
        AEGIS_TOKEN: await controller.operatorToken("team-a", "admin"),
      };
      const revoked = await runDeno(AGENT_MAIN, ["edge", "keys", "revoke-remote", nodeId], env);
      const revokedAt = Date.now();
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.match(
        revoked.stdout,
        new RegExp(`✔ Revoked ${nodeId}: its token is blacklisted and its stream dropped`),
      );
      await daemon.waitFor(/was revoked/, 5000);
      assert.ok(
        Date.now() - revokedAt < 1000,
        `stream dropped ${Date.now() - revokedAt} ms after the revocation`,
      );
      assert.equal((await daemon.child.status).code, 77);
      assert.match(
        daemon.stderr,
        /Re-enroll it with a fresh token: `aegis edge enroll <token> --force`/,
      );
      assert.equal((await status(host)).status, "Revoked");

      const { token } = await controller.issueEnrollment("team-a");
      const again = await host.aegis(["edge", "enroll", token, "--force", "--no-service"]);
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stdout, new RegExp(nodeId), "a new identity");
      const next = host.startDaemon();
      await next.waitFor(/stream connected/);
      assert.equal((await status(host)).status, "Connected");
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
