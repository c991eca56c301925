// Helpers for the node-credential tests: an enrolled host with a fast heartbeat, its credentials
// on disk, and node RPCs made directly with chosen keys and tokens (what an attacker, or a host
// whose answer was lost, would send).
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NodeRole } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { randomBytes } from "../../shared/crypto/encoding.ts";
import { type PayloadBody, sealEnvelope } from "../../shared/crypto/envelope.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import { fromConnectError } from "../../shared/rpc_errors.ts";
import { decodeNodeToken } from "../../shared/tokens/claims.ts";
import { createNodeClient } from "../../agent/client/node_client.ts";
import type { ControllerProcess } from "../support/controller.ts";
import { type Host, makeHost } from "../support/host.ts";

/** Sanitizers off: these tests own child processes and sockets; each cleans up in `finally`. */
export const opts = { sanitizeOps: false, sanitizeResources: false };

export interface Credentials {
  key: NodePrivateKey;
  token: string;
}

export function edgeFile(host: Host, name: string): string {
  return `${host.home}/.aegis/edge/${name}`;
}

export async function enrolledHost(
  controller: ControllerProcess,
  tenant = "team-a",
): Promise<{ host: Host; nodeId: string; enrollmentToken: string }> {
  const host = await makeHost();
  const { token } = await controller.issueEnrollment(tenant);
  const out = await host.aegis(["edge", "enroll", token, "--non-interactive", "--no-service"]);
  assert.equal(out.code, 0, out.stderr);
  // Heartbeat every second, so "the next heartbeat" comes quickly.
  await editConfig(host, (config) => {
    (config.edge as Record<string, unknown>).heartbeat_interval_secs = 1;
  });
  const nodeId = out.stdout.match(/Attested as node (n-[0-9a-f]+)/)![1];
  return { host, nodeId, enrollmentToken: token };
}

export async function editConfig(
  host: Host,
  edit: (config: Record<string, Record<string, unknown>>) => void,
): Promise<void> {
  const path = edgeFile(host, "aegis-config.yaml");
  const config = parse(await Deno.readTextFile(path));
  edit(config);
  await Deno.writeTextFile(path, stringify(config));
}

export async function credentials(host: Host): Promise<Credentials> {
  return {
    key: NodePrivateKey.fromPem(await Deno.readTextFile(edgeFile(host, "node.key"))),
    token: (await Deno.readTextFile(edgeFile(host, "node.token"))).trim(),
  };
}

/** A unary envelope as a daemon seals it, with any body. */
export function sealed(creds: Credentials, body: PayloadBody) {
  return sealEnvelope({
    key: creds.key,
    token: creds.token,
    nodeId: decodeNodeToken(creds.token).sub,
    streamNonce: randomBytes(16),
    seq: 1n,
    body,
  });
}

/** Runs one call on a fresh client: "ok" or the refusal's code. */
export async function outcome(
  controller: ControllerProcess,
  call: (client: Awaited<ReturnType<typeof createNodeClient>>) => Promise<unknown>,
): Promise<string> {
  const client = await createNodeClient(parseEndpoint(controller.endpoint));
  try {
    await call(client);
    return "ok";
  } catch (error) {
    return fromConnectError(error).code;
  } finally {
    client.close();
  }
}

export function describeWith(controller: ControllerProcess, creds: Credentials): Promise<string> {
  return outcome(
    controller,
    (client) => client.describeNode(sealed(creds, { case: "describe", value: {} as never })),
  );
}

/**
 * AttestNode + ChallengeNode with `key` and a proof (an enrollment token, or a node token to
 * refresh). Returns the node token the controller answered with, or the refusal's code.
 */
export async function attestWith(
  controller: ControllerProcess,
  key: NodePrivateKey,
  proof: { case: "bootstrapProof" | "nodeToken"; value: string },
): Promise<{ token?: string; nodeId?: string; code?: string }> {
  const client = await createNodeClient(parseEndpoint(controller.endpoint));
  try {
    const challenge = await client.attestNode({
      role: NodeRole.EDGE,
      publicKey: key.publicKey.bytes,
      hostname: "attacker",
      os: Deno.build.os,
      arch: Deno.build.arch,
      clientTime: timestampFromDate(new Date()),
      nodeToken: proof.case === "nodeToken" ? proof.value : "",
    });
    const answer = await client.challengeNode({
      challengeId: challenge.challengeId,
      signature: key.sign(
        challengeBytes(challenge.challengeId, challenge.nonce, key.publicKey.bytes),
      ),
      proof,
    });
    return { token: answer.nodeSecurityToken, nodeId: answer.nodeId };
  } catch (error) {
    return { code: fromConnectError(error).code };
  } finally {
    client.close();
  }
}

/** The controller's view of a node, as an operator sees it. */
export async function hostView(
  controller: ControllerProcess,
  nodeId: string,
): Promise<{ status: string }> {
  const token = await controller.operatorToken("team-a", "readonly");
  return await (await controller.api(`/v1/edge/hosts/${nodeId}`, { token })).json();
}

/** A loopback port nothing listens on: connections to it are refused at once. */
export function deadEndpoint(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return `http://127.0.0.1:${port}`;
}
