// Issue 10, item 6: a request body the controller cannot decode is the caller's fault, so every
// RPC the controller serves answers it INVALID_ARGUMENT (gRPC status 3, Connect "invalid_argument",
// HTTP 400), never INTERNAL / 500, whatever the protocol: gRPC, gRPC-Web, Connect binary and JSON,
// unary calls and the first message of a stream. The RPCs are read from the generated descriptors
// in shared/gen, so a new service or method is covered without touching this file.
import assert from "node:assert/strict";
import type * as http2 from "node:http2";
import {
  type DescField,
  type DescFile,
  type DescMessage,
  type DescMethod,
  fromBinary,
  fromJson,
  type JsonValue,
} from "@bufbuild/protobuf";
import { startControllerProcess } from "../support/controller.ts";
import { ROOT } from "../support/processes.ts";
import { TEST_DB_KIND } from "../support/db.ts";
import { connectH2, grpcFrame, h2Call } from "../security/wire.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Bytes that are no protobuf message at all; each method gets those its input type refuses. */
const JUNK_PAYLOADS: Record<string, number[]> = {
  "field number 0": [0x00],
  "varint tag longer than 10 bytes": Array(11).fill(0xff),
  "length-delimited field past the end": [0x7a, 0x40, 0x01, 0x02],
  "wire type 7": [0x0f, 0x00],
  "truncated varint": [0x08, 0x80],
};

interface Reply {
  /** The gRPC status (gRPC, gRPC-Web) or the Connect error code, or what went wrong instead. */
  code: string;
  detail: string;
}

interface Case {
  rpc: string;
  name: string;
  send: () => Promise<Reply>;
  /** Text the error must carry: that it was the decoding that failed, not a handler's check. */
  mentions?: string;
}

/** Every RPC of every service in the generated code. */
async function generatedMethods(): Promise<DescMethod[]> {
  const methods: DescMethod[] = [];
  for (const path of await filesUnder(`${ROOT}shared/gen`)) {
    if (!path.endsWith("_pb.ts")) continue;
    const module: Record<string, unknown> = await import(`file://${path}`);
    for (const value of Object.values(module)) {
      const file = value as Partial<DescFile>;
      if (file?.kind === "file") methods.push(...file.services!.flatMap((s) => s.methods));
    }
  }
  return methods;
}

async function filesUnder(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...await filesUnder(path));
    else files.push(path);
  }
  return files.sort();
}

Deno.test(
  `[${TEST_DB_KIND}] undecodable requests get INVALID_ARGUMENT on every RPC and protocol`,
  opts,
  async () => {
    const methods = await generatedMethods();
    const paths = methods.map(pathOf);
    // The three services the controller serves today; more may come, none may vanish.
    for (
      const path of [
        "/aegis.edge.v1.NodeClusterService/AttestNode",
        "/aegis.edge.v1.NodeClusterService/ConnectEdge",
        "/aegis.edge.v1.RelayPeerService/ForwardCall",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
      ]
    ) assert.ok(paths.includes(path), `${path} is not in shared/gen`);

    const controller = await startControllerProcess();
    const session = await connectH2(controller.port);
    try {
      const cases = methods.flatMap((method) => casesFor(method, controller.endpoint, session));
      const wrong: string[] = [];
      const seen = new Map<string, number>();
      // A few at a time: ConnectEdge admits a bounded number of unauthenticated streams.
      for (let i = 0; i < cases.length; i += 8) {
        await Promise.all(
          cases.slice(i, i + 8).map(async (c) => {
            const reply = await c.send();
            seen.set(reply.code, (seen.get(reply.code) ?? 0) + 1);
            const invalid = reply.code === "3" || reply.code === "invalid_argument";
            if (!invalid || !reply.detail.includes(c.mentions ?? "")) {
              wrong.push(`${c.rpc} ${c.name}: ${reply.code} ${reply.detail}`);
            }
          }),
        );
      }
      console.log(
        `${cases.length} undecodable requests over ${methods.length} RPCs:`,
        Object.fromEntries(seen),
      );
      assert.equal(
        wrong.length,
        0,
        `${wrong.length} of ${cases.length} answered otherwise, e.g.:\n${
          wrong.slice(0, 12).join("\n")
        }`,
      );
      // Every RPC got its share, streams included.
      for (const path of paths) {
        assert.ok(cases.filter((c) => c.rpc === path).length >= 8, `${path} was barely tried`);
      }
    } finally {
      session.close();
      await controller.stop();
    }
  },
);

function pathOf(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function casesFor(method: DescMethod, endpoint: string, session: http2.ClientHttp2Session): Case[] {
  const rpc = pathOf(method);
  const input = method.input;
  const unary = method.methodKind === "unary";
  const cases: Case[] = [];
  const add = (name: string, send: () => Promise<Reply>, mentions?: string) =>
    cases.push({ rpc, name, send, mentions });

  const junk = Object.entries(JUNK_PAYLOADS).filter(([, bytes]) =>
    refuses(() => fromBinary(input, new Uint8Array(bytes)))
  );
  assert.ok(junk.length >= 3, `${input.typeName} decodes most junk payloads`);
  for (const [name, bytes] of junk) {
    const payload = new Uint8Array(bytes);
    add(`gRPC, ${name}`, () => grpc(session, rpc, [grpcFrame(payload)]));
    add(`gRPC-Web, ${name}`, () => grpcWeb(session, rpc, grpcFrame(payload)));
    if (unary) add(`Connect binary, ${name}`, () => connectUnary(endpoint, rpc, "proto", payload));
    else add(`Connect stream binary, ${name}`, () => connectStream(session, rpc, "proto", payload));
  }

  // Bad gRPC frame headers: compressed with no grpc-encoding, shorter than a header, longer than
  // the bytes that follow.
  const empty = new Uint8Array();
  add(
    "gRPC, compressed flag without an encoding",
    () => grpc(session, rpc, [grpcFrame(empty, true)]),
  );
  add("gRPC, 3-byte frame header", () => grpc(session, rpc, [new Uint8Array([0, 0, 0])]));
  add(
    "gRPC, frame length past the end",
    () => grpc(session, rpc, [grpcFrame(new Uint8Array(4), false, 40)]),
  );
  add(
    "gRPC-Web, compressed flag without an encoding",
    () => grpcWeb(session, rpc, grpcFrame(empty, true)),
  );
  if (unary) {
    // A unary call carries exactly one message.
    add("gRPC, no message", () => grpc(session, rpc, []));
    add("gRPC, two messages", () => grpc(session, rpc, [grpcFrame(empty), grpcFrame(empty)]));
  }

  const json = (name: string, body: string, mentions?: string) => {
    if (unary) {
      add(`Connect JSON, ${name}`, () => connectUnary(endpoint, rpc, "json", body), mentions);
    } else {
      add(
        `Connect stream JSON, ${name}`,
        () => connectStream(session, rpc, "json", body),
        mentions,
      );
    }
  };
  json("not JSON", "{");
  json("an array", "[]");
  json("a string", '"x"');
  for (const [path, value] of wrongTypes(input)) {
    const body = JSON.stringify(nest(path, value));
    assert.ok(refuses(() => fromJson(input, JSON.parse(body))), `${rpc} accepts ${body}`);
    json(`${path.join(".")} of the wrong type`, body);
  }
  for (const path of enumPaths(input)) {
    // Proto3 JSON refuses an enum name it does not know (dropping it would turn the field into
    // its default, and leave the refusal, if any, to the handler's checks).
    const body = JSON.stringify(nest(path, "NO_SUCH_VALUE"));
    json(`unknown ${path.join(".")} value`, body, "NO_SUCH_VALUE");
  }
  return cases;
}

function refuses(parse: () => unknown): boolean {
  try {
    parse();
    return false;
  } catch {
    return true;
  }
}

/** A value of the wrong JSON type for each field of the message. */
function wrongTypes(message: DescMessage): Array<[string[], JsonValue]> {
  return message.fields.map((field: DescField): [string[], JsonValue] => {
    switch (field.fieldKind) {
      case "list":
        return [[field.jsonName], "not a list"];
      case "map":
        return [[field.jsonName], ["not a map"]];
      case "message":
        return [[field.jsonName], [1, 2]];
      default:
        return [[field.jsonName], { not: "a scalar" }];
    }
  });
}

/** Paths to every singular enum field, in nested messages too. */
function enumPaths(message: DescMessage, depth = 0): string[][] {
  if (depth > 3) return [];
  return message.fields.flatMap((field: DescField): string[][] => {
    if (field.fieldKind === "enum") return [[field.jsonName]];
    if (field.fieldKind === "message") {
      return enumPaths(field.message, depth + 1).map((p) => [field.jsonName, ...p]);
    }
    return [];
  });
}

function nest(path: string[], value: JsonValue): JsonValue {
  return path.reduceRight<JsonValue>((inner, key) => ({ [key]: inner }), value);
}

async function grpc(
  session: http2.ClientHttp2Session,
  path: string,
  chunks: Uint8Array[],
): Promise<Reply> {
  const reply = await h2Call(session, path, { chunks, timeoutMs: 10_000 });
  return {
    code: reply.grpcStatus !== undefined ? String(reply.grpcStatus) : `no status (${reply.error})`,
    detail: reply.grpcMessage ?? "",
  };
}

/** gRPC-Web over HTTP/2: the status is in the headers, or in a trailer frame in the body. */
async function grpcWeb(
  session: http2.ClientHttp2Session,
  path: string,
  frame: Uint8Array,
): Promise<Reply> {
  const reply = await h2Call(session, path, {
    headers: { "content-type": "application/grpc-web+proto" },
    chunks: [frame],
    timeoutMs: 10_000,
  });
  const status = reply.grpcStatus ?? reply.body.match(/grpc-status:\s*(\d+)/)?.[1];
  return {
    code: status !== undefined ? String(status) : `no status (${reply.status} ${reply.error})`,
    detail: decodeURIComponent(
      reply.grpcMessage ?? reply.body.match(/grpc-message:\s*([^\r\n]*)/)?.[1] ?? "",
    ),
  };
}

/** The Connect protocol's unary calls over HTTP/1.1, as curl or a browser sends them. */
async function connectUnary(
  endpoint: string,
  path: string,
  format: "proto" | "json",
  body: Uint8Array<ArrayBuffer> | string,
): Promise<Reply> {
  const response = await fetch(`${endpoint}${path}`, {
    method: "POST",
    headers: { "content-type": `application/${format}`, "connect-protocol-version": "1" },
    body,
  });
  const text = await response.text();
  let code = `HTTP ${response.status}`;
  try {
    code = JSON.parse(text).code ?? code;
  } catch { /* not a Connect error */ }
  if (code === "invalid_argument" && response.status !== 400) code = `HTTP ${response.status}`;
  return { code, detail: text.slice(0, 200) };
}

/** The Connect protocol's streams: the error is in the end-of-stream message. */
async function connectStream(
  session: http2.ClientHttp2Session,
  path: string,
  format: "proto" | "json",
  body: Uint8Array | string,
): Promise<Reply> {
  const payload = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const reply = await h2Call(session, path, {
    headers: { "content-type": `application/connect+${format}` },
    chunks: [grpcFrame(payload)],
    timeoutMs: 10_000,
  });
  const end = reply.body.match(/\{"error":.*\}/)?.[0];
  const code = end?.match(/"code":"([a-z_]+)"/)?.[1];
  return { code: code ?? `no error (${reply.status} ${reply.error})`, detail: end ?? "" };
}
