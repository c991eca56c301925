// Values the transport hands to RPC handlers.
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { addressBucket, ClientAddressResolver } from "../server/client_address.ts";
import { trustRequest } from "../server/listener.ts";

const remoteAddrKey = createContextKey<string>("unknown", { description: "client address" });
const trustKey = createContextKey<() => () => void>(() => () => {}, {
  description: "lifts the unauthenticated-body bounds off this request's stream",
});

interface RequestLike {
  socket?: { remoteAddress?: string } | null;
  headers?: Record<string, string | string[] | undefined>;
}

/** The client address comes from the socket, or from a trusted proxy's forwarding headers. */
export function contextValuesFor(resolver = new ClientAddressResolver()) {
  return (req: RequestLike) =>
    createContextValues()
      .set(remoteAddrKey, resolver.resolve(req.socket?.remoteAddress, req.headers ?? {}))
      .set(trustKey, () => trustRequest(req));
}

/**
 * The stream has authenticated: it may now live past the HTTP/2 body deadline, its bytes no
 * longer count against the unauthenticated budget, and its connection not against its address.
 * Returns what to call when the stream is over, so the connection counts again.
 */
export function trustStream(ctx: HandlerContext): () => void {
  return ctx.values.get(trustKey)();
}

export function remoteAddr(ctx: HandlerContext): string {
  return ctx.values.get(remoteAddrKey);
}

/** The key per-client limits count by (IPv6: the /64). */
export function remoteBucket(ctx: HandlerContext): string {
  return addressBucket(remoteAddr(ctx));
}
