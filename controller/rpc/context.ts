// Values the transport hands to RPC handlers.
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";

const remoteAddrKey = createContextKey<string>("unknown", { description: "peer address" });

export function contextValuesFor(req: { socket?: { remoteAddress?: string } | null }) {
  const address = req.socket?.remoteAddress ?? "unknown";
  // IPv4 peers on a dual-stack socket show up as ::ffff:a.b.c.d.
  return createContextValues().set(remoteAddrKey, address.replace(/^::ffff:/, ""));
}

export function remoteAddr(ctx: HandlerContext): string {
  return ctx.values.get(remoteAddrKey);
}
