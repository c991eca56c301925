// Stock clients see the controller's health: Debian's python3-grpcio over gRPC (HTTP/2 with
// trailers), a Connect client over HTTP/1.1, and plain REST.
import assert from "node:assert/strict";
import { startControllerProcess } from "./support/controller.ts";
import { ROOT } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  `[${TEST_DB_KIND}] Health answers python grpcio, Connect and REST on one port; unknown: NOT_FOUND`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    try {
      const python = async (service: string, ...flags: string[]) => {
        const out = await new Deno.Command("/usr/bin/python3", {
          args: [
            `${ROOT}tests/clients/grpc_health_check.py`,
            `127.0.0.1:${controller.port}`,
            service,
            ...flags,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        return new TextDecoder().decode(out.stdout).trim();
      };
      assert.equal(await python(""), "SERVING");
      assert.equal(await python("aegis.edge.v1.NodeClusterService"), "SERVING");
      // The gRPC health checking protocol: Check on an unknown service fails NOT_FOUND; Watch
      // answers SERVICE_UNKNOWN (and would go on, should the service appear).
      assert.equal(await python("no.such.Service"), "NOT_FOUND");
      assert.equal(await python("", "--watch"), "SERVING");
      assert.equal(await python("no.such.Service", "--watch"), "SERVICE_UNKNOWN");

      // The Connect protocol over HTTP/1.1 with JSON, as a browser or curl sends it.
      const connect = await fetch(`${controller.endpoint}/grpc.health.v1.Health/Check`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1" },
        body: "{}",
      });
      assert.equal(connect.status, 200);
      assert.deepEqual(await connect.json(), { status: "SERVING" });
      const unknown = await fetch(`${controller.endpoint}/grpc.health.v1.Health/Check`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1" },
        body: JSON.stringify({ service: "no.such.Service" }),
      });
      assert.equal(unknown.status, 404);
      assert.equal((await unknown.json()).code, "not_found");

      const rest = await controller.api("/healthz");
      assert.deepEqual(await rest.json(), { status: "SERVING", role: "controller" });
    } finally {
      await controller.stop();
    }
  },
);
