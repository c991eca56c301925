// Unary node requests and enrollment tokens accept exactly what they were made for: the body of
// the RPC, once; a redeemed jti only for the node's current key; one live node per key
// (issue 9, items 13, 16 and 20).
import assert from "node:assert/strict";
import { startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import {
  attestWith,
  credentials,
  describeWith,
  edgeFile,
  enrolledHost,
  hostView,
  opts,
  outcome,
  sealed,
} from "./node_support.ts";

Deno.test(
  `[${TEST_DB_KIND}] DescribeNode refuses another RPC's body, and any unary envelope sent twice`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const creds = await credentials(host);
      const wrongBody = await outcome(
        controller,
        (client) => client.describeNode(sealed(creds, { case: "deregister", value: {} as never })),
      );
      assert.equal(wrongBody, "INVALID_ARGUMENT");

      const envelope = sealed(creds, { case: "describe", value: {} as never });
      assert.equal(await outcome(controller, (client) => client.describeNode(envelope)), "ok");
      assert.equal(
        await outcome(controller, (client) => client.describeNode(envelope)),
        "REPLAYED",
      );

      // A captured logout cannot be played back either (nor sent to another RPC).
      const logout = sealed(creds, { case: "deregister", value: {} as never });
      assert.equal(
        await outcome(controller, (client) => client.rotateEdgeKey(logout)),
        "INVALID_ARGUMENT",
      );
      assert.equal(await describeWith(controller, creds), "ok", "nothing was revoked");
      assert.notEqual((await hostView(controller, nodeId)).status, "Revoked");
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] after a rotation, the enrollment jti answers only for the current key`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId, enrollmentToken } = await enrolledHost(controller);
    try {
      const oldKey = (await credentials(host)).key;
      const rotated = await host.aegis(["edge", "keys", "rotate"]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const proof = { case: "bootstrapProof" as const, value: enrollmentToken };

      const withOldKey = await attestWith(controller, oldKey, proof);
      assert.equal(withOldKey.code, "ENROLL_TOKEN_REDEEMED", "no token for the replaced key");

      // A retried enrollment by the node's current key still gets its node back.
      const current = await attestWith(controller, (await credentials(host)).key, proof);
      assert.equal(current.nodeId, nodeId, current.code);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] enrolling a key again as a new node replaces the old node: one key, one live node`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const first = await credentials(host);
      const { token } = await controller.issueEnrollment("team-a");
      const second = await attestWith(controller, first.key, {
        case: "bootstrapProof",
        value: token,
      });
      assert.ok(second.nodeId, `enrolled: ${second.code}`);
      assert.notEqual(second.nodeId, nodeId);
      assert.equal((await hostView(controller, nodeId)).status, "Revoked");
      assert.equal(await describeWith(controller, first), "NODE_REVOKED");
      assert.equal(await describeWith(controller, { key: first.key, token: second.token! }), "ok");

      // A key another node holds cannot be rotated onto a node either.
      const other = await enrolledHost(controller);
      try {
        const otherCreds = await credentials(other.host);
        await Deno.writeTextFile(edgeFile(other.host, "node.key.new"), first.key.toPem());
        const taken = await other.host.aegis(["edge", "keys", "rotate"]);
        assert.notEqual(taken.code, 0);
        assert.match(taken.stderr, /already the key of a node/);
        assert.equal(await describeWith(controller, otherCreds), "ok", "nothing changed");
      } finally {
        await other.host.cleanup();
      }
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);
