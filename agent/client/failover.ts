// Every unary node call goes to the configured endpoints in order until one answers: a host
// whose first relay is down still refreshes, rotates and describes itself through the next.
// Only failures that say nothing about the request (unreachable, rate-limited, internal) move
// on; a refusal is the controller's answer and ends the attempt. The call builds its request
// per attempt, so each endpoint gets a freshly sealed envelope (never a replay of the last one).
import type { Endpoint } from "../../shared/endpoint.ts";
import { AegisError } from "../../shared/errors.ts";
import { isRetryable } from "../../shared/rpc_errors.ts";
import { callNode, type ClientOptions, createNodeClient, type NodeClient } from "./node_client.ts";

export interface Answered<T> {
  value: T;
  endpoint: Endpoint;
}

export async function callAnyEndpoint<T>(
  endpoints: readonly Endpoint[],
  options: ClientOptions,
  call: (client: NodeClient, endpoint: Endpoint) => Promise<T>,
): Promise<Answered<T>> {
  if (endpoints.length === 0) {
    throw new AegisError("CONFIG_INVALID", "no controller endpoints are configured");
  }
  const failures: string[] = [];
  let last: AegisError | undefined;
  for (const endpoint of endpoints) {
    const client = await createNodeClient(endpoint, options);
    try {
      return { value: await callNode(endpoint, () => call(client, endpoint)), endpoint };
    } catch (error) {
      const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
      if (!isRetryable(aegis)) throw aegis;
      last = aegis;
      failures.push(`${endpoint.display}: ${aegis.message}`);
    } finally {
      client.close();
    }
  }
  if (endpoints.length === 1) throw last!;
  throw new AegisError(last!.code, `no controller endpoint answered (${failures.join("; ")})`, {
    cause: last,
  });
}
