// Pieces the benchmarks share: enrolling simulated nodes quickly, pools, percentiles, RSS.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { NodePrivateKey } from "../shared/crypto/node_key.ts";
import { challengeBytes } from "../shared/crypto/signed_bytes.ts";
import type { NodeClient } from "../agent/client/node_client.ts";
import type { ControllerProcess } from "../tests/support/controller.ts";

export interface SimulatedNode {
  key: NodePrivateKey;
  nodeId: string;
  token: string;
}

export async function enrollOne(
  client: NodeClient,
  token: string,
  key = NodePrivateKey.generate(),
): Promise<SimulatedNode> {
  const challenge = await client.attestNode({
    role: NodeRole.EDGE,
    publicKey: key.publicKey.bytes,
    hostname: "bench",
    os: "linux",
    arch: "x86_64",
    clientTime: timestampFromDate(new Date()),
  });
  const response = await client.challengeNode({
    challengeId: challenge.challengeId,
    signature: key.sign(
      challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
    ),
    proof: { case: "bootstrapProof", value: token },
  });
  return { key, nodeId: response.nodeId, token: response.nodeSecurityToken };
}

export async function issueTokens(controller: ControllerProcess, count: number, tenant = "bench") {
  const operator = await controller.operatorToken(tenant);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await controller.api("/v1/edge/enrollment-tokens", {
      method: "POST",
      token: operator,
      body: "{}",
    });
    tokens.push((await r.json()).token);
  }
  return tokens;
}

export async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]);
}

/**
 * A bench simulates a whole fleet from one loopback address, which the controller's per-address
 * caps (meant for anonymous peers on the internet) would rightly throttle; raise them here only.
 */
export const FLEET_FROM_ONE_ADDRESS = [
  "limits:",
  "  unauthenticated_streams_per_address: 4096",
  "  unauthenticated_streams_per_prefix: 4096",
  "  unauthenticated_streams_max: 4096",
  "  unauthenticated_requests_per_address: 4096",
  "  max_connections_per_address: 20000",
].join("\n");

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  const ticksPerSec = 100; // USER_HZ, 100 on every Linux ABI Deno runs on
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSec;
}
