// Hostile-client tools for the security tests: raw HTTP/2 requests with hand-made gRPC frames,
// a gzip bomb built in a stream, and a sampler of the controller's resident memory.
import * as http2 from "node:http2";
import { createGzip } from "node:zlib";

export const RPC = {
  attest: "/aegis.edge.v1.NodeClusterService/AttestNode",
  challenge: "/aegis.edge.v1.NodeClusterService/ChallengeNode",
  connectEdge: "/aegis.edge.v1.NodeClusterService/ConnectEdge",
  rotate: "/aegis.edge.v1.NodeClusterService/RotateEdgeKey",
  deregister: "/aegis.edge.v1.NodeClusterService/DeregisterNode",
  describe: "/aegis.edge.v1.NodeClusterService/DescribeNode",
  healthCheck: "/grpc.health.v1.Health/Check",
  healthWatch: "/grpc.health.v1.Health/Watch",
  relayForward: "/aegis.edge.v1.RelayPeerService/ForwardCall",
} as const;

/** A gRPC length-prefixed message; `declared` lets a test lie about the length. */
export function grpcFrame(payload: Uint8Array, compressed = false, declared?: number): Uint8Array {
  const frame = new Uint8Array(5 + payload.length);
  frame[0] = compressed ? 1 : 0;
  new DataView(frame.buffer).setUint32(1, declared ?? payload.length);
  frame.set(payload, 5);
  return frame;
}

/**
 * gzip of a protobuf message whose field 2 (AttestNodeRequest.public_key) holds `inflated` zero
 * bytes: about 1 KB on the wire per MB once decoded.
 */
export async function gzipBomb(inflated: number): Promise<Uint8Array<ArrayBuffer>> {
  const gzip = createGzip({ level: 9 });
  const parts: Uint8Array[] = [];
  gzip.on("data", (chunk: Uint8Array) => parts.push(chunk));
  const ended = new Promise((resolve) => gzip.on("end", resolve));
  gzip.write(new Uint8Array([0x12, ...varint(inflated)]));
  const zeros = new Uint8Array(1024 * 1024);
  for (let left = inflated; left > 0; left -= zeros.length) {
    const chunk = left >= zeros.length ? zeros : zeros.subarray(0, left);
    if (!gzip.write(chunk)) await new Promise((resolve) => gzip.once("drain", resolve));
  }
  gzip.end();
  await ended;
  return concat(parts);
}

export interface RawReply {
  status?: number;
  grpcStatus?: number;
  grpcMessage?: string;
  /** The stream was reset or the connection failed before a status came. */
  error?: string;
  body: string;
}

export interface RawCall {
  headers?: Record<string, string>;
  /** Written in order; the request half-closes after the last unless `keepOpen`. */
  chunks?: Uint8Array[];
  keepOpen?: boolean;
  timeoutMs?: number;
}

/** One request on an HTTP/2 session, resolved when the stream closes (or on timeout). */
export function h2Call(session: http2.ClientHttp2Session, path: string, call: RawCall = {}) {
  return new Promise<RawReply>((resolve) => {
    const reply: RawReply = { body: "" };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...call.headers,
      });
    } catch (error) {
      resolve({ ...reply, error: String(error) });
      return;
    }
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // A refused request may still have body queued behind flow control: drop it.
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve(reply);
    };
    const timer = setTimeout(() => {
      reply.error = "timeout";
      finish();
    }, call.timeoutMs ?? 20_000);
    const takeStatus = (headers: http2.IncomingHttpHeaders) => {
      if (headers[":status"]) reply.status = Number(headers[":status"]);
      if (headers["grpc-message"]) {
        reply.grpcMessage = decodeURIComponent(`${headers["grpc-message"]}`);
      }
      if (headers["grpc-status"] !== undefined) {
        reply.grpcStatus = Number(headers["grpc-status"]);
        finish();
      }
    };
    stream.on("response", takeStatus);
    stream.on("trailers", takeStatus);
    stream.on("data", (chunk: Uint8Array) => {
      if (reply.body.length < 4096) reply.body += new TextDecoder().decode(chunk);
    });
    stream.on("error", (error) => reply.error ??= error.message);
    stream.on("close", () => {
      if (reply.grpcStatus === undefined && !reply.error && stream.rstCode) {
        reply.error = `reset ${stream.rstCode}`;
      }
      finish();
    });
    for (const chunk of call.chunks ?? []) stream.write(chunk);
    if (!call.keepOpen) stream.end();
  });
}

/** An h2c session; `localAddress` binds the client end (any of 127.0.0.0/8 on loopback). */
export function connectH2(port: number, localAddress?: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(
      `http://127.0.0.1:${port}`,
      localAddress ? { localAddress } as http2.ClientSessionOptions : {},
    );
    session.once("connect", () => resolve(session));
    session.once("error", reject);
    session.on("error", () => {});
  });
}

/** The resident memory of a process, in MiB (Linux). */
export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}

/** Samples a process's RSS; `onOver` fires once if it ever passes `boundMiB`. */
export class RssWatch {
  peak = 0;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(pid: number, readonly boundMiB: number, onOver: () => void) {
    let fired = false;
    this.#timer = setInterval(() => {
      try {
        this.peak = Math.max(this.peak, rssMiB(pid));
      } catch { /* the process is gone */ }
      if (this.peak > boundMiB && !fired) {
        fired = true;
        onOver();
      }
    }, 100);
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.peak;
  }
}

function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return bytes;
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
