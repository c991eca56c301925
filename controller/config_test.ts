import assert from "node:assert/strict";
import { parseControllerConfig } from "./config.ts";

const relayYaml = `
cluster:
  enabled: true
  role: relay-coordinator
  cluster_grpc_port: 50056
  ingress:
    public_endpoint: relay.example.com
keycloak:
  endpoint: https://auth.example.com
openbao:
  endpoint: https://secrets.example.com
postgres:
  dsn: $POSTGRES_DSN
`;

Deno.test("parseControllerConfig() reads the relay config and interpolates $ENV", () => {
  const config = parseControllerConfig(relayYaml, "relay.yaml", {
    POSTGRES_DSN: "postgres://db/x",
  });
  assert.equal(config.cluster.role, "relay-coordinator");
  assert.equal(config.cluster.cluster_grpc_port, 50056);
  assert.equal(config.cluster.ingress.public_endpoint, "relay.example.com");
  assert.equal(config.postgres.dsn, "postgres://db/x");
  assert.equal(config.edge.enrollment_token_ttl_secs, 900);
});

Deno.test("parseControllerConfig() defaults an empty file to an embedded controller on 50056", () => {
  const config = parseControllerConfig("", "c.yaml", {});
  assert.equal(config.cluster.role, "controller");
  assert.equal(config.cluster.cluster_grpc_port, 50056);
  assert.equal(config.postgres.dsn, undefined);
});

Deno.test("parseControllerConfig() names the key of a missing variable", () => {
  assert.throws(() => parseControllerConfig(relayYaml, "relay.yaml", {}), {
    message: /relay\.yaml: postgres\.dsn refers to \$POSTGRES_DSN, which is not set/,
  });
});

Deno.test("parseControllerConfig() names the offending key of a bad value", () => {
  assert.throws(
    () => parseControllerConfig("cluster:\n  cluster_grpc_port: seventy\n", "c.yaml", {}),
    { code: "CONFIG_INVALID", message: /cluster\.cluster_grpc_port: / } as never,
  );
  assert.throws(() => parseControllerConfig("cluster:\n  rol: edge\n", "c.yaml", {}), {
    message: /cluster: Unrecognized key/,
  });
});

Deno.test("AEGIS_ROLE overrides the role, and a wrong one is refused", () => {
  assert.equal(
    parseControllerConfig("", "c.yaml", { AEGIS_ROLE: "relay-coordinator" }).cluster.role,
    "relay-coordinator",
  );
  assert.throws(() => parseControllerConfig("", "c.yaml", { AEGIS_ROLE: "edge" }), {
    message: /AEGIS_ROLE="edge" is not one of/,
  });
});
