import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";
import type { NodeClient } from "../client/node_client.ts";
import { callViaStream, type StreamLink } from "./stream_link.ts";

// No endpoint is configured: reaching callAnyEndpoint fails with CONFIG_INVALID, which tells
// the tests the call left the stream's connection.
const NO_ENDPOINTS: never[] = [];

function link(timeoutMs?: number): StreamLink {
  return {
    client: {} as NodeClient,
    endpoint: parseEndpoint("http://127.0.0.1:1"),
    timeoutMs,
  };
}

Deno.test("a request the controller refused as busy is asked again on the same connection", async () => {
  let asked = 0;
  const value = await callViaStream(link(30_000), NO_ENDPOINTS, {}, () => {
    asked++;
    if (asked <= 2) {
      throw new AegisError("RATE_LIMITED", "too many unfinished requests from this address");
    }
    return Promise.resolve("answered");
  });
  assert.equal(value, "answered");
  assert.equal(asked, 3);
});

Deno.test("other retryable failures still move on to the configured endpoints", async () => {
  let asked = 0;
  await assert.rejects(
    callViaStream(link(30_000), NO_ENDPOINTS, {}, () => {
      asked++;
      throw new AegisError("UNREACHABLE", "connection reset");
    }),
    (error: unknown) => error instanceof AegisError && error.code === "CONFIG_INVALID",
  );
  assert.equal(asked, 1);
});

Deno.test("a refusal is never retried, and busy refusals stop at the deadline", async () => {
  let asked = 0;
  await assert.rejects(
    callViaStream(link(30_000), NO_ENDPOINTS, {}, () => {
      asked++;
      throw new AegisError("KEY_IN_USE", "the new key is another node's");
    }),
    (error: unknown) => error instanceof AegisError && error.code === "KEY_IN_USE",
  );
  assert.equal(asked, 1);
  // A deadline too short for any wait: the one attempt, then the endpoints.
  asked = 0;
  await assert.rejects(
    callViaStream(link(50), NO_ENDPOINTS, {}, () => {
      asked++;
      throw new AegisError("RATE_LIMITED", "busy");
    }),
    (error: unknown) => error instanceof AegisError && error.code === "CONFIG_INVALID",
  );
  assert.equal(asked, 1);
});
