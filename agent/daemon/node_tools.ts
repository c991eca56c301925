// Tools the daemon runs on itself when the controller asks over the stream: a fleet key rotation
// or token refresh, or a fleet upgrade. Only the daemon holds the key (and decides what binary
// it runs), so the controller can ask but never do.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { ToolCall } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { AegisError } from "../../shared/errors.ts";
import { parseDuration } from "../../shared/duration.ts";
import type { EdgePaths } from "../state/paths.ts";
import type { StreamLink } from "../keys/stream_link.ts";
import type { Emit } from "../tools/types.ts";
// Each tool's machinery is imported when the tool runs: the daemon keeps what it loads, and most
// daemons never run these (see daemon.ts).

/** What a fleet upgrade needs from the daemon running it. */
export interface NodeToolHooks {
  supervised: boolean;
  caFile?: string;
  /** Stops the daemon so that its supervisor starts the switched binary. */
  restart(): void;
}

/** Long enough for the switch's answer to leave on the stream before the daemon exits. */
const RESTART_DELAY_MS = 500;

export function isNodeTool(tool: string): boolean {
  return tool.startsWith("node.");
}

/** The node client's default deadline for a unary call (node_client.ts). */
const UNARY_DEADLINE_MS = 15_000;

/** One at a time per state directory: two rotations racing on the same files would lose one. */
const busy = new Set<string>();

export async function runNodeTool(
  call: ToolCall,
  paths: EdgePaths,
  emit: Emit,
  log: (m: string) => void,
  hooks?: NodeToolHooks,
  /** The stream the call came on: the rotation's or refresh's own RPC goes over it first. */
  link?: StreamLink,
) {
  const started = Date.now();
  // The RPC behind the tool may wait as long as the call itself may run (at least the client's
  // own deadline for unary calls).
  const deadline = call.deadline ? timestampMs(call.deadline) : 0;
  if (link && deadline > started + UNARY_DEADLINE_MS) {
    link = { ...link, timeoutMs: deadline - started };
  }
  const refuse = (code: string, message: string) =>
    emit(call.callId, { case: "refused", value: { code, message } as never });
  if (busy.has(paths.dir)) {
    return refuse(
      "BUSY",
      "a key rotation, token refresh or update is already running on this host",
    );
  }
  busy.add(paths.dir);
  try {
    let result: Record<string, unknown>;
    if (call.tool === "node.rotate_key") {
      const args = JSON.parse(call.argumentsJson || "{}") as { keep_old?: string };
      const { rotateKey } = await import("../keys/rotate.ts");
      const rotated = await rotateKey(
        paths,
        parseDuration(args.keep_old ?? "24h", "keep_old"),
        link,
      );
      log(`rotated the node key on the controller's request: now ${rotated.newFingerprint}`);
      result = {
        key_fingerprint: rotated.newFingerprint,
        token_expires: rotated.tokenExpires.toISOString(),
      };
    } else if (call.tool === "node.refresh_token") {
      const { refreshToken } = await import("../keys/refresh.ts");
      const refreshed = await refreshToken(paths, link);
      log("refreshed the node token on the controller's request");
      result = { token_expires: refreshed.expires.toISOString() };
    } else if (call.tool === "node.update" && hooks) {
      const { parseUpdateArguments, updateFromDaemon } = await import(
        "../update/daemon_update.ts"
      );
      const update = await updateFromDaemon(
        { paths, supervised: hooks.supervised, caFile: hooks.caFile, log },
        parseUpdateArguments(call.argumentsJson),
      );
      result = update;
      if (update.status === "switched") setTimeout(hooks.restart, RESTART_DELAY_MS);
    } else {
      return refuse("UNKNOWN_TOOL", `this daemon has no tool ${call.tool}`);
    }
    emit(call.callId, {
      case: "exit",
      value: {
        exitCode: 0,
        durationMs: BigInt(Date.now() - started),
        resultJson: JSON.stringify(result),
      } as never,
    });
  } catch (error) {
    const aegis = error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
    refuse(aegis.code, aegis.message);
  } finally {
    busy.delete(paths.dir);
  }
}
