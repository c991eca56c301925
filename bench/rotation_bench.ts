// Key rotation through a real controller process: latency of one RotateEdgeKey (dual signatures,
// one transaction) and how many rotations per second the controller sustains. Prints numbers.
//
//   deno task bench:rotation [--nodes 200] [--concurrency 16]
import { parseArgs } from "node:util";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { randomBytes } from "../shared/crypto/encoding.ts";
import { sealEnvelope } from "../shared/crypto/envelope.ts";
import { rotationBytes } from "../shared/crypto/signed_bytes.ts";
import { parseEndpoint } from "../shared/endpoint.ts";
import { createNodeClient, type NodeClient } from "../agent/client/node_client.ts";
import { startControllerProcess } from "../tests/support/controller.ts";
import { TEST_DB_KIND } from "../tests/support/db.ts";
import {
  enrollOne,
  FLEET_FROM_ONE_ADDRESS,
  issueTokens,
  percentile,
  pool,
  type SimulatedNode,
} from "./support.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "200" },
    concurrency: { type: "string", default: "16" },
  },
});

async function rotate(client: NodeClient, node: SimulatedNode): Promise<void> {
  const newKey = NodePrivateKey.generate();
  const nonce = randomBytes(16);
  const envelope = sealEnvelope({
    key: node.key,
    token: node.token,
    nodeId: node.nodeId,
    streamNonce: nonce,
    seq: 1n,
    body: {
      case: "rotate",
      value: {
        newPublicKey: newKey.publicKey.bytes,
        newKeySignature: newKey.sign(
          rotationBytes(node.nodeId, node.key.publicKey.bytes, newKey.publicKey.bytes, nonce),
        ),
      } as never,
    },
  });
  const response = await client.rotateEdgeKey(envelope);
  node.key = newKey;
  node.token = response.nodeSecurityToken;
}

const count = Number(values.nodes);
const concurrency = Number(values.concurrency);
console.log(
  `# rotation bench on ${TEST_DB_KIND} (${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores)`,
);
const controller = await startControllerProcess({
  edge: "attest_rate_limit_per_min: 1000000",
  yaml: FLEET_FROM_ONE_ADDRESS,
});
const client = await createNodeClient(parseEndpoint(controller.endpoint));
try {
  const nodes: SimulatedNode[] = [];
  await pool(
    await issueTokens(controller, count),
    concurrency,
    async (t) => void nodes.push(await enrollOne(client, t)),
  );

  const samples: number[] = [];
  for (const node of nodes) {
    const started = performance.now();
    await rotate(client, node);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  console.log(
    `rotation latency: p50 ${percentile(samples, 50).toFixed(2)} ms  p99 ${
      percentile(samples, 99).toFixed(2)
    } ms  (n=${count}, sequential)`,
  );

  const started = performance.now();
  await pool(nodes, concurrency, (node) => rotate(client, node));
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `rotations: ${count} in ${seconds.toFixed(2)} s = ${
      (count / seconds).toFixed(1)
    }/s (concurrency ${concurrency})`,
  );
} finally {
  client.close();
  await controller.stop();
}
Deno.exit(0);
