import assert from "node:assert/strict";
import { parseEdgeConfig, renderEdgeConfig } from "./edge_config.ts";

Deno.test("parseEdgeConfig() fills defaults for an empty file", () => {
  const config = parseEdgeConfig("");
  assert.equal(config.edge.heartbeat_interval_secs, 30);
  assert.deepEqual(config.node.labels, {});
  assert.equal(config.secrets.backend, "file");
});

Deno.test("parseEdgeConfig() names the offending key", () => {
  assert.throws(() => parseEdgeConfig("edge:\n  heartbeat_interval_secs: 0\n"), {
    code: "CONFIG_INVALID",
    message: /edge\.heartbeat_interval_secs: /,
  } as never);
  assert.throws(() => parseEdgeConfig("edge:\n  heartbeat_secs: 3\n"), {
    message: /edge: Unrecognized key/,
  } as never);
  assert.throws(() => parseEdgeConfig("edge: [unclosed"), { message: /not valid YAML/ } as never);
});

Deno.test("renderEdgeConfig() output parses back to the same config", () => {
  const config = parseEdgeConfig("node:\n  labels: { region: home }\nlocal_tools: [shell]\n");
  assert.deepEqual(parseEdgeConfig(renderEdgeConfig(config, "# header\n")), config);
});
