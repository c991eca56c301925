// A request the server cannot decode is the caller's fault: INVALID_ARGUMENT (gRPC status 3,
// Connect "invalid_argument", HTTP 400), never INTERNAL. Connect (2.2) says INTERNAL for a binary
// message that does not parse ("parse binary: …"; it uses the same code on the client side, where
// a bad response is the server's fault) and for a frame flagged compressed without an encoding,
// and UNIMPLEMENTED for a unary gRPC call with no message or two. It has no option for this, so
// the router options below fix the code on the error itself, before any protocol writes it out:
//
// - a unary request is parsed before any interceptor or handler runs, so a request gate (which runs
//   first, once per call) watches the call's signal: Connect aborts it with the very error it then
//   serializes, and an error that ends a call before its handler started can only be the request's.
// - a stream's messages are parsed as the handler reads them, so an interceptor hands the handler
//   a request stream whose decoding errors already say INVALID_ARGUMENT; it also marks the call
//   as started, so that an error from the handler's own work (a peer's bad response, say) is
//   never taken for the request's.
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  type HandlerContext,
  type Interceptor,
  type StreamRequest,
} from "@connectrpc/connect";

/** Errors Connect raises while reading and decoding a request body, by their messages. */
const DECODING_ERRORS = [
  /^parse binary: /,
  /^received compressed envelope, but do not know how to decompress$/,
  /^protocol error: missing input message for /,
  /^protocol error: received extra input message for /,
];

/** Rewrites a request-decoding error to INVALID_ARGUMENT, in place; true when it was one. */
export function asInvalidArgument(error: unknown): boolean {
  if (!(error instanceof ConnectError) || error.code === Code.InvalidArgument) return false;
  if (error.code !== Code.Internal && error.code !== Code.Unimplemented) return false;
  if (!DECODING_ERRORS.some((pattern) => pattern.test(error.rawMessage))) return false;
  // Connect serializes this object as it is; `code` is read-only only in its type.
  (error as { code: Code }).code = Code.InvalidArgument;
  error.message = `[invalid_argument] ${error.rawMessage}`;
  return true;
}

/** Whether the call's handler (through the interceptors) has been reached. */
const handlerStarted = createContextKey<{ started: boolean }>({ started: true });

/** Runs before the body is read: until the handler starts, a failure is the request's. */
function watchCall(context: HandlerContext): void {
  const state = { started: false };
  context.values.set(handlerStarted, state);
  const signal = context.signal;
  signal.addEventListener("abort", () => {
    if (!state.started) asInvalidArgument(signal.reason);
  }, { once: true });
}

const decodingErrorsAreInvalidArgument: Interceptor = (next) => async (req) => {
  markStarted(req.contextValues);
  if (!req.stream) return await next(req);
  try {
    return await next({ ...req, message: invalidArgumentOnDecodingError(req) } as StreamRequest);
  } catch (error) {
    // A server-streaming call reads its one message here, before the handler runs: none, or two.
    asInvalidArgument(error);
    throw error;
  }
};

function markStarted(values: ContextValues): void {
  values.get(handlerStarted).started = true;
}

async function* invalidArgumentOnDecodingError(req: StreamRequest): AsyncIterable<unknown> {
  try {
    yield* req.message;
  } catch (error) {
    asInvalidArgument(error);
    throw error;
  }
}

/**
 * The options every Connect router on the controller's port takes (with connectLimits), so that
 * any service served there, now or later, answers undecodable requests INVALID_ARGUMENT. A router
 * that sets interceptors of its own must keep this one first.
 */
export function decodingErrorOptions() {
  return {
    requestGate: watchCall,
    interceptors: [decodingErrorsAreInvalidArgument],
    // Proto3 JSON: an unknown field or enum name is an error, not silently dropped (it would turn
    // into the field's default); binary requests keep unknown fields as the protocol says.
    jsonOptions: { ignoreUnknownFields: false },
  };
}
