// A rotation whose answer never reached the host is finished by the daemon by itself: on its
// heartbeat while it runs, and at start, also long after the overlap window (issue 9, item 5).
import assert from "node:assert/strict";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { openDb } from "../../controller/store/db.ts";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { AGENT_MAIN, eventually, runDeno } from "../support/processes.ts";
import type { Host } from "../support/host.ts";
import {
  credentials,
  describeWith,
  edgeFile,
  enrolledHost,
  hostView,
  opts,
} from "./node_support.ts";

/** `aegis edge keys rotate` failing right after the controller committed. */
async function interruptedRotation(host: Host, mode: "" | ":crash"): Promise<NodePrivateKey> {
  const out = await runDeno(AGENT_MAIN, ["edge", "keys", "rotate"], {
    HOME: host.home,
    AEGIS_TEST_FAULTS: `rotate.after_rpc${mode}`,
  });
  assert.notEqual(out.code, 0, out.stderr);
  return NodePrivateKey.fromPem(await Deno.readTextFile(edgeFile(host, "node.key.new")));
}

/** Moves the node's last rotation a day into the past, as if the host had been off since. */
async function ageRotation(controller: ControllerProcess, nodeId: string): Promise<void> {
  await controller.process.stop();
  const db = controller.db.dsn
    ? await controller.db.open()
    : await openDb({ dataDir: controller.dataDir });
  try {
    await db.query(
      `UPDATE edge_daemons SET rotated_at = rotated_at - interval '1 day' WHERE node_id = $1`,
      [nodeId],
    );
  } finally {
    await db.close();
  }
  await controller.restart();
}

async function assertFinished(controller: ControllerProcess, host: Host, newKey: NodePrivateKey) {
  const creds = await credentials(host);
  assert.ok(creds.key.publicKey.equals(newKey.publicKey), "node.key is the new key");
  assert.equal(await describeWith(controller, creds), "ok");
  const leftovers = [...Deno.readDirSync(`${host.home}/.aegis/edge`)].map((e) => e.name);
  assert.ok(!leftovers.includes("node.key.new"), leftovers.join());
}

Deno.test(
  `[${TEST_DB_KIND}] a running daemon finishes an interrupted rotation on its heartbeat`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      const newKey = await interruptedRotation(host, "");
      // Well inside the overlap window (at least 60 s), so only the heartbeat can have done it.
      await daemon.waitFor(/finished an interrupted key rotation/, 20_000);
      await assertFinished(controller, host, newKey);
      await eventually(
        async () => (await hostView(controller, nodeId)).status === "Connected" || undefined,
        "Connected",
      );
      assert.doesNotMatch(daemon.stderr, /refused this node/);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] the daemon finishes an interrupted rotation at start, a day after it`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    const { host, nodeId } = await enrolledHost(controller);
    try {
      const newKey = await interruptedRotation(host, ":crash");
      await ageRotation(controller, nodeId);
      const daemon = host.startDaemon();
      await daemon.waitFor(/stream connected/, 30_000);
      assert.match(daemon.stderr, /finished an interrupted key rotation/);
      await assertFinished(controller, host, newKey);
      // And the next rotation is an ordinary one.
      const again = await host.aegis(["edge", "keys", "rotate"]);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      await host.cleanup();
      await controller.stop();
    }
  },
);

for (const command of [["keys", "rotate"], ["token", "refresh"]]) {
  Deno.test(
    `[${TEST_DB_KIND}] \`aegis edge ${
      command.join(" ")
    }\` finishes an interrupted rotation a day after it`,
    opts,
    async () => {
      const controller = await startControllerProcess();
      const { host, nodeId } = await enrolledHost(controller);
      try {
        const oldCreds = await credentials(host);
        const newKey = await interruptedRotation(host, ":crash");
        await ageRotation(controller, nodeId);
        const finished = await host.aegis(["edge", ...command]);
        assert.equal(finished.code, 0, finished.stderr);
        assert.match(finished.stdout + finished.stderr, /inished an interrupted (key )?rotation/);
        await assertFinished(controller, host, newKey);
        assert.equal(await describeWith(controller, oldCreds), "NODE_TOKEN_INVALID");
      } finally {
        await host.cleanup();
        await controller.stop();
      }
    },
  );
}
