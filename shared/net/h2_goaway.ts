// Deno 2.9's node:http2 answers a peer's GOAWAY from inside nghttp2's read of it; see below.
import type * as http2 from "node:http2";

/**
 * A peer's GOAWAY reaches node:http2 inside nghttp2_session_mem_recv, and Deno 2.9 answers it
 * right there (its "goaway" event, then session.close(), or destroy() for an error code): about
 * one session in a thousand that a client closes this way then aborts the whole process in
 * nghttp2 (`find_stream_on_goaway_func: Assertion stream->closed_next == NULL`, or a segfault).
 * So that answer waits until mem_recv has unwound; the peer is leaving anyway. Both sides need
 * it: the controller's sessions (clients closing theirs) and the daemon's and relay peers' (a
 * controller draining at shutdown, or a TLS server's close() sending GOAWAY on every session).
 */
export function deferGoawayReply(session: http2.Http2Session): void {
  let inGoaway = false;
  session.prependListener("goaway", () => {
    inGoaway = true;
    queueMicrotask(() => inGoaway = false);
  });
  for (const name of ["close", "destroy"] as const) {
    const original = session[name] as (...args: unknown[]) => void;
    (session as unknown as Record<string, unknown>)[name] = function (
      this: http2.Http2Session,
      ...args: unknown[]
    ) {
      if (!inGoaway) return original.apply(this, args);
      inGoaway = false;
      setImmediate(() => original.apply(this, args));
    };
  }
}
