// The deployment files under deploy/ checked against the real thing: the relay pod's gRPC probes
// against a running controller, the Caddyfile through Caddy (TLS → h2c), the systemd unit through
// systemd-analyze. No container engine runs here, so the Containerfile is checked statically.
import assert from "node:assert/strict";
import { parse } from "yaml";
import { startControllerProcess } from "./support/controller.ts";
import { Background, CONTROLLER_MAIN, eventually, freePort, ROOT } from "./support/processes.ts";
import { TEST_DB_KIND } from "./support/db.ts";

// Sanitizers off: these tests own child processes and sockets whose pipes outlive single async
// ops by design; every test stops its processes and removes its files in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false };
const DEPLOY = `${ROOT}deploy`;

interface Probe {
  grpc: { port: number; service: string };
}
interface PodManifest {
  kind: string;
  spec: {
    containers: {
      args: string[];
      ports: { containerPort: number }[];
      livenessProbe: Probe;
      readinessProbe: Probe;
      env: { name: string; value?: string }[];
    }[];
  };
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test(
  `[${TEST_DB_KIND}] the relay pod's gRPC liveness and readiness probes answer SERVING`,
  opts,
  async () => {
    const pod = parse(
      await Deno.readTextFile(`${DEPLOY}/relay/pod-relay-coordinator.yaml`),
    ) as PodManifest;
    assert.equal(pod.kind, "Pod");
    const [container] = pod.spec.containers;
    assert.equal(container.ports[0].containerPort, 50056);
    assert.deepEqual(container.args.slice(0, 3), [
      "run",
      "--config",
      "/etc/aegis/aegis-config.yaml",
    ]);
    assert.ok(
      container.env.some((e) => e.name === "AEGIS_ROLE" && e.value === "relay-coordinator"),
    );
    const probes = [container.livenessProbe, container.readinessProbe];
    for (const probe of probes) {
      assert.deepEqual(probe.grpc, { port: 50056, service: "grpc.health.v1.Health" });
    }

    const controller = await startControllerProcess({ role: "relay-coordinator" });
    try {
      for (const probe of probes) {
        // What the kubelet sends: grpc.health.v1.Health/Check with the probe's service, from a
        // stock gRPC client (python3-grpcio) over HTTP/2.
        const out = await run("/usr/bin/python3", [
          `${ROOT}tests/clients/grpc_health_check.py`,
          `127.0.0.1:${controller.port}`,
          probe.grpc.service,
        ]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout.trim(), "SERVING");
      }
    } finally {
      await controller.stop();
    }
  },
);

Deno.test(
  `[${TEST_DB_KIND}] deploy/Caddyfile adapts, and proxies gRPC health over TLS → h2c`,
  opts,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "aegis-caddy-" });
    const controller = await startControllerProcess();
    let caddy: Background | undefined;
    try {
      const adapted = await run("caddy", ["adapt", "--config", `${DEPLOY}/Caddyfile`]);
      assert.equal(adapted.code, 0, adapted.stderr);
      const json = JSON.parse(adapted.stdout);
      const route = JSON.stringify(json.apps.http.servers);
      assert.match(route, /"versions":\["h2c"\]/);

      // The deploy file's site block as it is, under test-only global options (no admin port,
      // state in the temp dir, no port 80).
      const port = freePort();
      await Deno.writeTextFile(
        `${dir}/Caddyfile`,
        `{\n  admin off\n  grace_period 1s\n  skip_install_trust\n  storage file_system ${dir}/data\n` +
          `  http_port ${freePort()}\n  default_bind 127.0.0.1\n}\n` +
          await Deno.readTextFile(`${DEPLOY}/Caddyfile`),
      );
      caddy = new Background("", [], {
        DOMAIN_RELAY: `localhost:${port}`,
        RELAY_UPSTREAM: `127.0.0.1:${controller.port}`,
        RELAY_LOG: `${dir}/relay.log`,
        HOME: dir,
      }, ["caddy", "run", "--config", `${dir}/Caddyfile`, "--adapter", "caddyfile"]);
      const rootCa = `${dir}/data/pki/authorities/local/root.crt`;
      await eventually(async () => (await Deno.stat(rootCa)).isFile || undefined, "CA", 20_000);
      const client = Deno.createHttpClient({
        caCerts: [await Deno.readTextFile(rootCa)],
        http1: false,
        http2: true,
      });
      try {
        // Plain gRPC (not Connect): length-prefixed protobuf, HTTP/2 end to end. The request is
        // HealthCheckRequest{service: "grpc.health.v1.Health"} encoded by hand.
        const service = new TextEncoder().encode("grpc.health.v1.Health");
        const message = new Uint8Array([0x0a, service.length, ...service]);
        const frame = new Uint8Array([0, 0, 0, 0, message.length, ...message]);
        const answer = await eventually(
          async () => {
            const response = await fetch(`https://localhost:${port}/grpc.health.v1.Health/Check`, {
              method: "POST",
              client,
              headers: { "content-type": "application/grpc", te: "trailers" },
              body: frame,
            });
            return response.ok ? new Uint8Array(await response.arrayBuffer()) : undefined;
          },
          "health through Caddy",
          20_000,
        );
        // One uncompressed frame holding HealthCheckResponse{status: SERVING (1)}.
        assert.deepEqual([...answer], [0, 0, 0, 0, 2, 0x08, 1]);
      } finally {
        client.close();
      }
    } finally {
      await caddy?.stop();
      await controller.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test("deploy/systemd/aegis-controller.service passes systemd-analyze verify, hardened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const unit = await Deno.readTextFile(`${DEPLOY}/systemd/aegis-controller.service`);
    // verify checks that ExecStart exists: point it at a real executable, nothing else changes.
    const path = `${dir}/aegis-controller.service`;
    await Deno.writeTextFile(
      path,
      unit.replaceAll("/usr/local/bin/aegis-controller", Deno.execPath()),
    );
    const verify = await run("systemd-analyze", ["verify", path]);
    assert.equal((verify.stdout + verify.stderr).trim(), "", "systemd-analyze verify printed");
    assert.equal(verify.code, 0);
    const security = await run("systemd-analyze", ["security", "--offline=yes", path]);
    const level = Number(security.stdout.match(/Overall exposure level for \S+: ([\d.]+)/)?.[1]);
    assert.ok(level <= 2, `exposure ${level} (systemd-analyze security):\n${security.stdout}`);
    for (
      const line of [
        "DynamicUser=yes",
        "StateDirectory=aegis",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
      ]
    ) {
      assert.ok(unit.includes(`\n${line}\n`), line);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deploy/Containerfile: release binary, non-root, volumes, port and HEALTHCHECK (static)", async () => {
  // No podman or docker on these machines: the instructions are checked, not built.
  const text = await Deno.readTextFile(`${DEPLOY}/Containerfile`);
  const instructions = text.replace(/\\\n\s*/g, " ").split("\n")
    .filter((l) => l.trim() && !l.startsWith("#")).map((l) => l.trim());
  const find = (verb: string) => instructions.filter((l) => l.startsWith(verb + " "));
  assert.equal(find("FROM").length, 1, "one stage: the compiled binary is copied, not built");
  assert.match(
    find("COPY")[0],
    /dist\/\$\{VERSION\}\/aegis-controller-\$\{VERSION\}-linux-\$\{ARCH\} \/usr\/local\/bin\/aegis-controller$/,
  );
  assert.deepEqual(find("USER"), ["USER 65532:65532"]);
  assert.deepEqual(find("VOLUME"), ['VOLUME ["/etc/aegis", "/var/lib/aegis"]']);
  assert.deepEqual(find("EXPOSE"), ["EXPOSE 50056"]);
  assert.match(find("HEALTHCHECK")[0], /CMD \["\/usr\/local\/bin\/aegis-controller", "health"/);
  assert.match(find("CMD")[0] ?? "", /"run", "--config", "\/etc\/aegis\/aegis-config.yaml"/);
});

/** `aegis-controller health --url <url>`, the image's HEALTHCHECK, run from source. */
const health = (url: string) =>
  run(Deno.execPath(), ["run", "-A", "--quiet", CONTROLLER_MAIN, "health", "--url", url], {
    NO_COLOR: "1",
  });

Deno.test(
  `[${TEST_DB_KIND}] aegis-controller health (the image's HEALTHCHECK) exits 0 on SERVING`,
  opts,
  async () => {
    const controller = await startControllerProcess();
    try {
      const ok = await health(controller.endpoint);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), "SERVING");
    } finally {
      await controller.stop();
    }
    const down = await health(controller.endpoint);
    assert.equal(down.code, 69);
  },
);
