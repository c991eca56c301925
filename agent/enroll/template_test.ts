import assert from "node:assert/strict";
import { parse } from "yaml";
import { configTemplate, mergeConfig, renderConfig } from "./template.ts";
import { parseEdgeConfig } from "../../shared/config/edge_config.ts";

const facts = {
  os: "linux",
  arch: "x86_64",
  hostname: "web-1.example.com",
  home: "/home/u",
  localTools: ["shell", "docker"],
  mountPoints: ["/home/u", "/tmp"],
};

Deno.test("configTemplate() grants only the tools it is given, not what PATH offers", () => {
  assert.deepEqual(configTemplate(facts, ["h:1"]).local_tools, []);
  const config = configTemplate(facts, ["h:1"], undefined, ["docker"]);
  assert.deepEqual(config.local_tools, ["docker"]);
  const text = renderConfig(config, facts);
  assert.match(text, /ANY command as this user: listing one is the same as listing shell/);
  assert.match(text, /# {3}Found on PATH, not granted: shell\./);
});

Deno.test("configTemplate() describes the host and the endpoint", () => {
  const config = configTemplate(facts, ["http://127.0.0.1:50056"], "web", ["shell", "docker"]);
  assert.deepEqual(config.cluster.endpoints, ["http://127.0.0.1:50056"]);
  assert.deepEqual(config.local_tools, ["shell", "docker"]);
  assert.deepEqual(config.node.labels, { host: "web-1" });
  assert.equal(config.edge.heartbeat_interval_secs, 30);
  const text = renderConfig(config, facts);
  assert.match(text, /^# AEGIS edge daemon config for web-1\.example\.com \(linux\/x86_64\)/);
  assert.deepEqual(parseEdgeConfig(text), config);
});

Deno.test("mergeConfig() keeps the person's values and fills the rest", () => {
  const existing = parse(
    "node:\n  labels: { region: home }\nlocal_tools: [shell]\nedge:\n  heartbeat_interval_secs: 10\n",
  );
  const merged = mergeConfig(existing, configTemplate(facts, ["h:1"]));
  assert.deepEqual(merged.node.labels, { region: "home", host: "web-1" });
  assert.deepEqual(merged.local_tools, ["shell"]);
  assert.equal(merged.edge.heartbeat_interval_secs, 10);
  assert.deepEqual(merged.cluster.endpoints, ["h:1"]);
});
