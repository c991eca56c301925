import assert from "node:assert/strict";
import { parseEndpoint, parseEndpointList } from "./endpoint.ts";

Deno.test("parseEndpoint() treats host:port as TLS and http:// as plaintext", () => {
  assert.deepEqual(parseEndpoint("relay.example.com:443"), {
    raw: "relay.example.com:443",
    baseUrl: "https://relay.example.com:443",
    display: "relay.example.com:443",
    tls: true,
  });
  assert.equal(parseEndpoint("relay.example.com").display, "relay.example.com:443");
  const local = parseEndpoint("http://127.0.0.1:50056");
  assert.equal(local.tls, false);
  assert.equal(local.baseUrl, "http://127.0.0.1:50056");
});

Deno.test("parseEndpoint() refuses other schemes and paths with a clear error", () => {
  assert.throws(() => parseEndpoint("ftp://x:1"), { message: /unsupported scheme/ });
  assert.throws(() => parseEndpoint("https://x:1/api"), { message: /no path/ });
});

Deno.test("parseEndpointList() splits on commas", () => {
  const list = parseEndpointList("http://127.0.0.1:1, http://127.0.0.1:2");
  assert.deepEqual(list.map((e) => e.display), ["127.0.0.1:1", "127.0.0.1:2"]);
});
