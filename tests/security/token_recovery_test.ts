// The node token is a renewable convenience and the key is the identity: a refresh whose answer
// was lost, a token that expired while the host was off, and a first relay that is down must
// never lock a host out (issue 9, items 4 and 10).
import assert from "node:assert/strict";
import { TokenAuthority } from "../../controller/app/tokens.ts";
import { loadSigningKey } from "../../controller/app/signing_key.ts";
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { runDeno } from "../support/processes.ts";
import { AGENT_MAIN } from "../support/processes.ts";
import {
  attestWith,
  credentials,
  deadEndpoint,
  describeWith,
  edgeFile,
  editConfig,
  enrolledHost,
  opts,
} from "./node_support.ts";

Deno.test(
  `[${TEST_DB_KIND}] a refresh whose answer was lost after the commit: the retry and the daemon still get a token`,
  opts,
  async () => {
    // The controller commits the first refresh, then drops its answer (once).
    const controller = await startControllerProcess({
      faults: "controller.refresh.after_commit:once",
    });
    const { host } = await enrolledHost(controller);
    try {
      // The host's refresh reaches the controller, which commits (blacklisting the token the
      // host holds) and then drops its answer (fault point).
      const before = await credentials(host);
      await attestWith(controller, before.key, { case: "nodeToken", value: before.token });
      assert.equal(await describeWith(controller, before), "NODE_TOKEN_INVALID", "committed");

      // Running the refresh again works: the key proves the node, whatever the token's state.
      const manual = await host.aegis(["edge", "token", "refresh"]);
      assert.equal(manual.code, 0, manual.stderr);
      const refreshed = await credentials(host);
      assert.equal(await describeWith(controller, refreshed), "ok");

      // Another answer lost, this time on the way back (the client drops it).
      await attestWith(controller, refreshed.key, { case: "nodeToken", value: refreshed.token });
      assert.equal(await describeWith(controller, refreshed), "NODE_TOKEN_INVALID", "committed");

      // The daemon, holding only the blacklisted token, renews it with its key and connects.
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      assert.match(daemon.stderr, /refreshed the node token/);
      const renewed = await credentials(host);
      assert.notEqual(renewed.token, refreshed.token);
      assert.equal(await describeWith(controller, renewed), "ok");
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a token without its key gets nothing; a revoked node gets nothing`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const creds = await credentials(host);
      const { NodePrivateKey } = await import("../../shared/crypto/node_key.ts");
      const thief = await attestWith(controller, NodePrivateKey.generate(), {
        case: "nodeToken",
        value: creds.token,
      });
      assert.equal(thief.code, "KEY_TOKEN_MISMATCH");
      const admin = await controller.operatorToken("team-a", "admin");
      const revoked = await controller.api(`/v1/edge/hosts/${nodeId}/revoke`, {
        method: "POST",
        token: admin,
        body: "{}",
      });
      assert.equal(revoked.status, 200, await revoked.text());
      const afterRevoke = await attestWith(controller, creds.key, {
        case: "nodeToken",
        value: creds.token,
      });
      assert.equal(afterRevoke.code, "NODE_REVOKED");
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] a token that expired while the host was off is refreshed by the daemon`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host } = await enrolledHost(controller);
    try {
      // What the host holds after a day and an hour off: a genuine token, expired an hour ago.
      const current = decodeNodeToken((await credentials(host)).token);
      const signingKey = await loadSigningKey(`${controller.dataDir}/signing-key.jwk`);
      const dayAgo = () => new Date(Date.now() - 25 * 3600_000);
      const authority = new TokenAuthority(signingKey, current.iss, dayAgo);
      const expired = await authority.issueNode({
        nodeId: current.sub,
        tenantId: current.tenant_id,
        keyFingerprint: current.cnf.kfp,
        ttlSecs: 86400,
      });
      await Deno.writeTextFile(edgeFile(host, "node.token"), expired.token + "\n");

      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      const renewed = await credentials(host);
      assert.ok(decodeNodeToken(renewed.token).exp * 1000 > Date.now(), "a fresh token");
      assert.equal(await describeWith(controller, renewed), "ok");
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] with the first endpoint down, refresh, rotate and status use the next one`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host } = await enrolledHost(controller);
    try {
      await editConfig(host, (config) => {
        config.cluster.endpoints = [deadEndpoint(), controller.endpoint];
      });
      const env = { HOME: host.home };
      const refreshed = await runDeno(AGENT_MAIN, ["edge", "token", "refresh"], env);
      assert.equal(refreshed.code, 0, refreshed.stderr);
      const rotated = await runDeno(AGENT_MAIN, ["edge", "keys", "rotate"], env);
      assert.equal(rotated.code, 0, rotated.stderr);
      const status = await host.aegis(["edge", "status", "--output", "json"]);
      const view = JSON.parse(status.stdout);
      assert.equal(view.endpoint, controller.endpoint.replace(/^http:\/\//, ""), status.stderr);
      assert.equal(
        view.key_fingerprint,
        await (await credentials(host)).key.publicKey.fingerprint(),
      );
      assert.doesNotMatch(status.stderr, /could not be asked/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
