// Values the transport hands to RPC handlers.
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { addressBucket, ClientAddressResolver } from "../server/client_address.ts";

const remoteAddrKey = createContextKey<string>("unknown", { description: "client address" });

interface RequestLike {
  socket?: { remoteAddress?: string } | null;
  headers?: Record<string, string | string[] | undefined>;
}

/** The client address comes from the socket, or from a trusted proxy's forwarding headers. */
export function contextValuesFor(resolver = new ClientAddressResolver()) {
  return (req: RequestLike) =>
    createContextValues().set(
      remoteAddrKey,
      resolver.resolve(req.socket?.remoteAddress, req.headers ?? {}),
    );
}

export function remoteAddr(ctx: HandlerContext): string {
  return ctx.values.get(remoteAddrKey);
}

/** The key per-client limits count by (IPv6: the /64). */
export function remoteBucket(ctx: HandlerContext): string {
  return addressBucket(remoteAddr(ctx));
}
