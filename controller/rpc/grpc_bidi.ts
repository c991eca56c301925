// A gRPC bidirectional stream served straight from a node:http2 stream: length-prefixed messages
// both ways, the status in trailers, grpc-timeout, and flow control in both directions. It exists
// for memory: Connect's router builds about 40 KiB of objects per stream (closures, generators,
// web streams, the compat request and response), more than a whole idle stream should cost when
// one process holds 15,000 of them. Everything else on the port stays on Connect.
//
// What the wire carries is standard gRPC (PROTOCOL-HTTP2.md), so any gRPC client works against
// it; errors are written by Connect's own trailer encoder, so a client sees the same status,
// message, metadata and details it would get from a Connect handler.
import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";

/** application/grpc and application/grpc+proto (JSON and gRPC-Web stay on Connect). */
const GRPC_PROTO = /^application\/grpc(\+proto)?\s*(;|$)/i;

/** Whether a request is a gRPC call of `path` in the binary codec. */
export function isGrpcProtoCall(headers: http2.IncomingHttpHeaders, path: string): boolean {
  return headers[":method"] === "POST" && headers[":path"] === path &&
    GRPC_PROTO.test(String(headers["content-type"] ?? ""));
}

export interface GrpcCall {
  /** The peer reset the stream or its connection went away. */
  readonly aborted: boolean;
}

export interface GrpcBidiSpec<I extends DescMessage, O extends DescMessage> {
  input: I;
  output: O;
  /** A message's declared length above this is refused before any of it is buffered. */
  readMaxBytes: number;
  /** Reads the requests and yields the responses; what it throws becomes the final status. */
  handler(
    requests: AsyncIterable<MessageShape<I>>,
    call: GrpcCall,
  ): AsyncIterable<MessageShape<O>>;
  /** Sees each body chunk as it arrives (the unauthenticated-bytes budget counts them). */
  onData?(chunk: Uint8Array): void;
  /**
   * How long one response write may wait for the peer to read (HTTP/2 flow control). A peer that
   * stops reading would otherwise hold the call, and what it buffers, for as long as it likes.
   */
  writeStallMs?: number;
  /** Ends the stream at the transport when a write stalled (the status cannot reach the peer). */
  onStall?(): void;
}

const DEFAULT_WRITE_STALL_MS = 60_000;

const HEADER_BYTES = 5;

/** Serves one gRPC bidi call on `stream`. Never throws; every outcome ends as a gRPC status. */
export function serveGrpcBidi<I extends DescMessage, O extends DescMessage>(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  spec: GrpcBidiSpec<I, O>,
): void {
  if (stream.destroyed || stream.closed) return;
  const contentType = String(headers["content-type"]);
  const stallMs = spec.writeStallMs ?? DEFAULT_WRITE_STALL_MS;
  let finished = false;
  let aborted = false;
  const call: GrpcCall = {
    get aborted() {
      return aborted;
    },
  };
  stream.on("error", () => {}); // a reset or a dead connection: seen as "close" below

  let deadline: ReturnType<typeof setTimeout> | undefined = undefined; // set once headers are read
  const finish = (error?: ConnectError) => {
    if (finished) return;
    finished = true;
    clearTimeout(deadline);
    requests.stop(error ?? new ConnectError("the call is over", Code.Canceled));
    if (stream.destroyed || stream.closed) return;
    try {
      const trailers = trailersFor(error);
      if (!stream.headersSent) {
        // Trailers-only: the status rides on the one header block.
        stream.respond({
          ":status": 200,
          "content-type": contentType,
          "grpc-accept-encoding": "identity",
          ...trailers,
        }, { endStream: true });
      } else {
        stream.once("wantTrailers", () => {
          try {
            stream.sendTrailers(trailers);
          } catch { /* the peer left meanwhile */ }
        });
        stream.end();
        // A peer that stopped reading never takes the status either: bounded like a write.
        const stall = setTimeout(() => spec.onStall?.(), stallMs);
        stream.once("close", () => clearTimeout(stall));
      }
    } catch { /* the stream ended under us */ }
    // Whatever the peer still sends is read and dropped, not kept.
    stream.resume();
  };
  const reader = new FrameReader(spec.readMaxBytes);
  const requests = new RequestQueue(
    stream,
    reader,
    (payload) => decode(spec.input, payload),
    finish,
  );

  const encoding = headers["grpc-encoding"];
  if (encoding !== undefined && encoding !== "identity") {
    return finish(
      new ConnectError(
        `unsupported grpc-encoding "${encoding}": this server accepts identity only`,
        Code.Unimplemented,
        { "grpc-accept-encoding": "identity" },
      ),
    );
  }
  const timeout = parseTimeout(headers["grpc-timeout"] as string | undefined ?? null, 2 ** 31 - 1);
  if (timeout.error) return finish(timeout.error);
  deadline = timeout.timeoutMs === undefined ? undefined : setTimeout(
    () => finish(new ConnectError("the call's deadline passed", Code.DeadlineExceeded)),
    timeout.timeoutMs,
  );

  stream.once("close", () => {
    if (finished) return;
    // Reset by the peer, or its connection died: nobody is left to read a status.
    aborted = true;
    finished = true;
    clearTimeout(deadline);
    requests.stop(new ConnectError("the peer went away", Code.Canceled));
  });

  stream.on("data", (chunk: Uint8Array) => {
    if (finished) return;
    spec.onData?.(chunk);
    requests.data(chunk);
  });
  stream.once("end", () => {
    if (!finished) requests.end();
  });

  try {
    stream.respond({
      ":status": 200,
      "content-type": contentType,
      "grpc-accept-encoding": "identity",
    }, { waitForTrailers: true });
  } catch {
    return; // reset before we could answer: "close" has ended the call
  }

  (async () => {
    for await (const message of spec.handler(requests, call)) {
      if (finished) break;
      if (stream.write(frame(toBinary(spec.output, message)))) continue;
      if (await drained(stream, stallMs)) continue;
      finish(
        new ConnectError(
          `the peer read nothing for ${stallMs} ms; the stream was ended`,
          Code.ResourceExhausted,
        ),
      );
      spec.onStall?.();
      break;
    }
    finish();
  })().catch((error) => finish(ConnectError.from(error)));
}

/** The status trailers for `error` (none: OK); never throws, whatever the error's text. */
function trailersFor(error: ConnectError | undefined): Record<string, string> {
  const trailers: Record<string, string> = {};
  try {
    setTrailerStatus(new Headers(), error).forEach((value, key) => trailers[key] = value);
    return trailers;
  } catch {
    return { "grpc-status": String(error?.code ?? Code.Internal), "grpc-message": "" };
  }
}

function decode<I extends DescMessage>(schema: I, payload: Uint8Array): MessageShape<I> {
  try {
    return fromBinary(schema, payload);
  } catch (error) {
    throw new ConnectError(`parse binary: ${(error as Error).message}`, Code.InvalidArgument);
  }
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, HEADER_BYTES);
  return out;
}

/** True once the stream takes writes again or is gone; false when `ms` pass first. */
function drained(stream: http2.ServerHttp2Stream, ms: number): Promise<boolean> {
  if (stream.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      stream.off("drain", onDrain);
      stream.off("close", onDrain);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    stream.once("drain", onDrain);
    stream.once("close", onDrain);
  });
}

const EMPTY = new Uint8Array(0);

/**
 * The body's bytes, split into gRPC messages on demand. Bytes are copied into one buffer that
 * grows by doubling (never past twice what arrived), not kept chunk by chunk: a peer sending a
 * message one byte per DATA frame would otherwise make each byte cost a few hundred. Every
 * frame header is checked as it arrives, so a bad or oversized frame is refused before its
 * bytes are buffered, whether or not the reader has got to it yet.
 */
export class FrameReader {
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  /** Where the first frame not yet known to be complete starts (frames before it are whole). */
  #scanned = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes received and not yet taken. */
  get pending(): number {
    return this.#end - this.#start;
  }

  /** Bytes the buffer holds, used or not: at most twice what is pending (or 256). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Whether a whole message is ready to take. */
  get ready(): boolean {
    return this.#scanned > this.#start;
  }

  /** Adds received bytes; throws a ConnectError when a frame header is bad. */
  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#reserve(chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    this.#scan();
  }

  /** The next whole message (a copy), or undefined when none is complete yet. */
  take(): Uint8Array | undefined {
    if (!this.ready) return undefined;
    const length = this.#lengthAt(this.#start);
    const from = this.#start + HEADER_BYTES;
    const message = this.#buf.slice(from, from + length);
    this.#start = from + length;
    if (this.#start === this.#end) {
      // Empty: let go of the buffer, so an idle stream holds none.
      this.#buf = EMPTY;
      this.#start = this.#end = this.#scanned = 0;
    }
    return message;
  }

  #scan(): void {
    while (this.#end - this.#scanned >= HEADER_BYTES) {
      const flags = this.#buf[this.#scanned];
      const length = this.#lengthAt(this.#scanned);
      if (flags & 1) {
        throw new ConnectError(
          "received compressed envelope, but do not know how to decompress",
          Code.InvalidArgument,
        );
      }
      if (flags !== 0) {
        throw new ConnectError(
          `protocol error: unknown frame flags ${flags}`,
          Code.InvalidArgument,
        );
      }
      if (length > this.maxBytes) {
        throw new ConnectError(
          `message size ${length} is larger than configured readMaxBytes ${this.maxBytes}`,
          Code.ResourceExhausted,
        );
      }
      if (this.#end - this.#scanned < HEADER_BYTES + length) return;
      this.#scanned += HEADER_BYTES + length;
    }
  }

  #lengthAt(offset: number): number {
    const b = this.#buf;
    return ((b[offset + 1] << 24) >>> 0) + (b[offset + 2] << 16) + (b[offset + 3] << 8) +
      b[offset + 4];
  }

  #reserve(more: number): void {
    const needed = this.#end - this.#start + more;
    if (this.#end + more <= this.#buf.length) return;
    if (this.#start > 0 && needed <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      const grown = new Uint8Array(Math.max(needed, 2 * this.#buf.length, 256));
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
    }
    this.#end -= this.#start;
    this.#scanned -= this.#start;
    this.#start = 0;
  }
}

/**
 * The requests, decoded one at a time as the handler takes them, in order. While a whole
 * message waits untaken the stream is paused: HTTP/2 flow control then holds the peer back, and
 * what this process buffers for it is at most one message and the chunk that completed it.
 */
class RequestQueue<T> implements AsyncIterable<T> {
  #ended = false;
  #error?: unknown;
  #waiter?: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void };

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly reader: FrameReader,
    private readonly decode: (payload: Uint8Array) => T,
    /** Ends the call with the status a bad frame or message earns. */
    private readonly refuse: (error: ConnectError) => void,
  ) {}

  data(chunk: Uint8Array): void {
    if (this.#ended) return;
    try {
      this.reader.append(chunk);
    } catch (error) {
      return this.refuse(ConnectError.from(error));
    }
    if (this.#waiter) this.#settle();
    if (this.reader.ready) this.stream.pause();
  }

  /** The peer half-closed: the handler sees the end after what is queued. */
  end(): void {
    if (this.#ended) return;
    if (this.reader.pending > 0 && !this.reader.ready) {
      return this.refuse(
        new ConnectError("protocol error: the stream ended inside a message", Code.InvalidArgument),
      );
    }
    this.#ended = true;
    if (this.#waiter) this.#settle();
  }

  /** The call is over: the handler sees `error` (nothing queued is handed out any more). */
  stop(error: unknown): void {
    if (this.#error !== undefined) return;
    this.#ended = true;
    this.#error = error;
    if (this.#waiter) this.#settle();
  }

  /** Hands the waiting reader what there is: a message, the end, or the error. */
  #settle(): void {
    const waiter = this.#waiter!;
    const result = this.#next();
    if (result === undefined) return;
    this.#waiter = undefined;
    if (result instanceof Error) waiter.reject(result);
    else waiter.resolve(result);
  }

  /** What next() yields now, or undefined when it must wait. */
  #next(): IteratorResult<T> | Error | undefined {
    if (this.#error !== undefined) return this.#error as Error;
    let payload: Uint8Array | undefined;
    try {
      payload = this.reader.take();
      if (payload) {
        const value = this.decode(payload);
        if (!this.reader.ready && !this.#ended) this.stream.resume();
        return { value, done: false };
      }
    } catch (error) {
      const refusal = ConnectError.from(error);
      this.refuse(refusal);
      return refusal;
    }
    if (!this.#ended) return undefined;
    if (this.reader.pending > 0) {
      const truncated = new ConnectError(
        "protocol error: the stream ended inside a message",
        Code.InvalidArgument,
      );
      this.refuse(truncated);
      return truncated;
    }
    return { value: undefined, done: true };
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#waiter) return Promise.reject(new Error("one reader at a time"));
    const result = this.#next();
    if (result instanceof Error) return Promise.reject(result);
    if (result !== undefined) return Promise.resolve(result);
    return new Promise((resolve, reject) => this.#waiter = { resolve, reject });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }
}
