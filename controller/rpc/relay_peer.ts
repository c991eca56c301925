// RelayPeerService over Connect: authenticates the calling relay, then streams the call's events
// from controller/app. Aborting the RPC (ctx.signal) cancels the call on the node.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type {
  ForwardCallRequest,
  RelayPeerService,
} from "../../shared/gen/aegis/edge/v1/relay_peer_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import type { PeerCallService } from "../app/peer_calls.ts";
import type { RelayTokens } from "../app/relay_tokens.ts";
import { type Log, wireError } from "./boundary.ts";

/** Ids are UUIDs and node ids; tool names are short. Arguments are bounded by the message limit. */
const MAX_ID_LENGTH = 128;

export function relayPeerService(
  deps: { calls: PeerCallService; tokens: RelayTokens; relayId: string; log: Log },
): ServiceImpl<typeof RelayPeerService> {
  return {
    async *forwardCall(request: ForwardCallRequest, ctx: HandlerContext) {
      try {
        const header = ctx.requestHeader.get("authorization");
        if (!header) {
          throw new AegisError("UNAUTHENTICATED", "a relay peer call needs a relay token");
        }
        validate(request);
        const call = {
          callId: request.callId,
          nodeId: request.nodeId,
          tool: request.tool,
          argumentsJson: request.argumentsJson,
          deadline: timestampDate(request.deadline!),
        };
        // The token names this relay and this exact call; the call must be on record and is
        // forwarded once (the token is spent here).
        const grant = await deps.tokens.verify(header, deps.relayId, call);
        await deps.calls.authorize(call, grant);
        deps.log(`relay ${grant.caller} forwarded call ${request.callId} for ${request.nodeId}`);
        yield* deps.calls.run(call, ctx.signal);
      } catch (error) {
        throw wireError(error, deps.log);
      }
    },
  };
}

function validate(request: ForwardCallRequest): void {
  for (
    const [name, value] of [["call_id", request.callId], ["node_id", request.nodeId], [
      "tool",
      request.tool,
    ]] as const
  ) {
    if (!value || value.length > MAX_ID_LENGTH) {
      throw new AegisError("INVALID_ARGUMENT", `${name} must be 1-${MAX_ID_LENGTH} characters`);
    }
  }
  if (!request.deadline) {
    throw new AegisError("INVALID_ARGUMENT", "a forwarded call needs a deadline");
  }
}
