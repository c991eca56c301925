// ConnectEdge stays a standard gRPC bidi stream: a client of another gRPC stack (Debian's
// python3-grpcio, with stubs protoc and grpc_python_plugin generate from our proto at test time)
// holds a node's stream against a real controller: StreamOpened, a signed Hello and Heartbeat
// acked, the host Connected while it is up, and status OK on half-close. Refusals reach it as
// typed gRPC statuses with their trailers: a bad signature or token (UNAUTHENTICATED), a message
// past max_message_bytes (RESOURCE_EXHAUSTED) and one just under it, read whole across many
// DATA frames and flow-control windows, then refused for its content (INVALID_ARGUMENT).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { eventually, ROOT } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { DEFAULT_LIMITS } from "../../controller/server/limits.ts";
import { attestWith, hostView } from "../security/node_support.ts";

const PYTHON = "/usr/bin/python3";
const PLUGIN = "/usr/bin/grpc_python_plugin";
const CLIENT = `${ROOT}tests/clients/edge_stream_client.py`;
const PROTO = "aegis/edge/v1/node_cluster.proto";

const missing = missingTools();
if (missing) console.warn(`edge_grpc_interop_test skipped: ${missing}`);

// Sanitizers off: these tests own child processes and sockets; each cleans up in `finally`.
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: missing !== undefined };

interface Report {
  case: string;
  seen: string[];
  nonce_bytes?: number;
  hello_ack_node_id?: string;
  status: string;
  details: string;
  aegis_error_code: string;
}

interface Node {
  nodeId: string;
  token: string;
  seed: Uint8Array;
}

Deno.test(
  `[${TEST_DB_KIND}] ConnectEdge answers a python grpcio client with generated stubs`,
  opts,
  (t) =>
    withNode(async (controller, node, stubs) => {
      await t.step("Hello and Heartbeat acked, Connected meanwhile, OK on half-close", async () => {
        const client = python(controller, node, stubs, "ok");
        let report: Report;
        try {
          const ready = await client.nextLine();
          if (ready !== "ready") assert.fail(`client: ${ready}\n${await client.stderr()}`);
          // The client holds its stream open until told, so this sees it up.
          assert.equal((await hostView(controller, node.nodeId)).status, "Connected");
          report = await client.finish();
        } finally {
          client.kill();
        }
        assert.deepEqual(report.seen, ["opened", "hello_ack", "heartbeat_ack"]);
        assert.equal(report.nonce_bytes, 16);
        assert.equal(report.hello_ack_node_id, node.nodeId);
        assert.equal(report.status, "OK", report.details);
        await eventually(async () => {
          const { status } = await hostView(controller, node.nodeId);
          return status === "Disconnected" ? status : undefined;
        }, "the host to show Disconnected");
      });

      await t.step(
        "a bad signature or token is UNAUTHENTICATED, with its aegis-error-code",
        async () => {
          for (
            const [name, code] of [
              ["bad-signature", "SIGNATURE_INVALID"],
              ["bad-token", "NODE_TOKEN_INVALID"],
            ]
          ) {
            const report = await python(controller, node, stubs, name).finish();
            assert.deepEqual(report.seen, ["opened"], name);
            assert.equal(report.status, "UNAUTHENTICATED", `${name}: ${report.details}`);
            assert.equal(report.aegis_error_code, code, name);
          }
          assert.notEqual((await hostView(controller, node.nodeId)).status, "Connected");
        },
      );

      await t.step("a message past max_message_bytes is refused, typed", async () => {
        const max = DEFAULT_LIMITS.max_message_bytes;
        // Past the limit: refused on the frame's declared length, before it is buffered.
        const over = await python(controller, node, stubs, "big-hello", 2 * max).finish();
        assert.deepEqual(over.seen, ["opened"]);
        assert.ok(
          ["RESOURCE_EXHAUSTED", "INVALID_ARGUMENT"].includes(over.status),
          `${over.status}: ${over.details}`,
        );
        // Just under it: many DATA frames, far past HTTP/2's initial 64 KiB window, read whole
        // and then refused by the Hello's bounds (so it arrived intact).
        const under = await python(controller, node, stubs, "big-hello", max - 4096).finish();
        assert.deepEqual(under.seen, ["opened"]);
        assert.equal(under.status, "INVALID_ARGUMENT", under.details);
        assert.equal(under.aegis_error_code, "INVALID_ARGUMENT");
        assert.match(under.details, /Hello refused: \d+ characters in the value of label "big"/);
      });
    }),
);

/** A controller, a node enrolled on it (its seed kept for the client) and generated stubs. */
async function withNode(
  fn: (controller: ControllerProcess, node: Node, stubs: string) => Promise<void>,
): Promise<void> {
  const controller = await startControllerProcess();
  const stubs = await Deno.makeTempDir({ prefix: "aegis-pystubs-" });
  try {
    await generateStubs(stubs);
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const { token: enrollment } = await controller.issueEnrollment("team-a");
    const enrolled = await attestWith(controller, NodePrivateKey.fromSeed(seed), {
      case: "bootstrapProof",
      value: enrollment,
    });
    assert.ok(enrolled.token && enrolled.nodeId, `enrollment failed: ${enrolled.code}`);
    await fn(controller, { nodeId: enrolled.nodeId, token: enrolled.token, seed }, stubs);
  } finally {
    await Deno.remove(stubs, { recursive: true }).catch(() => {});
    await controller.stop();
  }
}

async function generateStubs(dir: string): Promise<void> {
  const out = await new Deno.Command("protoc", {
    args: [
      "-I",
      "proto",
      `--python_out=${dir}`,
      `--grpc_python_out=${dir}`,
      `--plugin=protoc-gen-grpc_python=${PLUGIN}`,
      PROTO,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `protoc failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** The python client on one case; reads its stdout line by line, its report last. */
function python(
  controller: ControllerProcess,
  node: Node,
  stubs: string,
  name: string,
  labelBytes?: number,
) {
  const child = new Deno.Command(PYTHON, {
    args: [
      CLIENT,
      `127.0.0.1:${controller.port}`,
      stubs,
      name,
      ...(labelBytes === undefined ? [] : [String(labelBytes)]),
    ],
    env: {
      AEGIS_NODE_ID: node.nodeId,
      AEGIS_NODE_TOKEN: node.token,
      AEGIS_NODE_SEED: Array.from(node.seed, (b) => b.toString(16).padStart(2, "0")).join(""),
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string | undefined> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) {
        const rest = buffered;
        buffered = "";
        return rest || undefined;
      }
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  return {
    nextLine,
    stderr: () => stderr,
    /** Stops a client still waiting (a failed assertion must not leave it behind). */
    kill() {
      try {
        child.kill();
      } catch { /* it has exited */ }
    },
    /** Lets the client close its stream, and returns what it saw. */
    async finish(): Promise<Report> {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("\n")).catch(() => {});
      await writer.close().catch(() => {});
      const last = await nextLine();
      const status = await child.status;
      assert.ok(status.success && last, `client failed: ${await stderr}`);
      return JSON.parse(last);
    },
  };
}

function missingTools(): string | undefined {
  const works = (command: string, args: string[]) => {
    try {
      return new Deno.Command(command, { args, stdout: "null", stderr: "null" }).outputSync()
        .success;
    } catch {
      return false;
    }
  };
  if (!works(PYTHON, ["-c", "import grpc, google.protobuf, cryptography"])) {
    return `${PYTHON} lacks grpc, protobuf or cryptography (python3-grpcio)`;
  }
  if (!works("protoc", ["--version"])) return "protoc is missing (protobuf-compiler)";
  if (!existsSync(PLUGIN)) return `${PLUGIN} is missing (protobuf-compiler-grpc)`;
  return undefined;
}
