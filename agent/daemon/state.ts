// state.json: what the daemon last knew, for `aegis edge status` when the controller cannot be
// asked, and the failure count that paces reconnects across restarts of the daemon. The controller
// cannot see what went wrong on the host's side of the wire (an unreachable endpoint, a refused
// token, a refresh that failed), so the daemon keeps that here too: its last connection error and
// its time survive reconnects and restarts, and are reported to the controller in the next Hello.
import { readTextIfExists, writeFileAtomic } from "../../shared/fs/atomic.ts";
import { VERSION } from "../../shared/version.ts";

/**
 * Whether the controller takes this node's credentials, as the daemon last learned it:
 * - ok: the controller accepted the token on the last stream;
 * - refreshing: the token is being renewed (due, or refused and renewed with the key), or a
 *   refresh failed while the token is still good;
 * - token_expired: node.token expired and no refresh has succeeded yet;
 * - refused: the controller refused this node (revoked, the key refused, …).
 */
export type AuthState = "ok" | "refreshing" | "token_expired" | "refused";

export interface DaemonState {
  node_id: string;
  pid: number;
  status: "connected" | "disconnected" | "refused";
  since: string;
  endpoint: string;
  last_heartbeat_ack_at?: string;
  /** The last connection error (kept after the daemon reconnects) and when it happened. */
  last_error?: string;
  last_error_at?: string;
  auth?: AuthState;
  /** Why: the controller's refusal, a refresh's failure, the token's expiry. */
  auth_detail?: string;
  /** Connection attempts failed in a row since the last stream that connected. */
  failures: number;
  /** When this run of failures began: it bounds the backoff (see backoffDelay). */
  failing_since?: string;
  /** The version this daemon runs: `aegis update` waits for the new one to say Connected. */
  version?: string;
  /** Something restarts this daemon when it exits (a service manager or --supervised). */
  supervised?: boolean;
}

/** What one event changes; everything not named is carried over from the previous state. */
export interface StatePatch {
  /** Carried over when not given (an auth change alone); "disconnected" for a first state. */
  status?: DaemonState["status"];
  endpoint?: string;
  failures?: number;
  /** When the current run of failures began; carried over when not given. */
  failingSince?: Date;
  /** A new last error; its time is now unless given. */
  error?: string;
  errorAt?: Date;
  auth?: { state: AuthState; detail: string };
  heartbeatAck?: Date;
  supervised?: boolean;
}

/** Error messages are kept (and reported to the controller) up to this many characters. */
export const LAST_ERROR_MAX_CHARS = 1024;

/**
 * The state after `patch`. A state of another node (re-enrolled) is not carried over. `since`
 * moves only when the status changes; a heartbeat ack time is kept only within one status.
 */
export function nextState(
  previous: DaemonState | undefined,
  nodeId: string,
  patch: StatePatch,
  now: Date,
  pid = Deno.pid,
): DaemonState {
  const prior = previous?.node_id === nodeId ? previous : undefined;
  const status = patch.status ?? prior?.status ?? "disconnected";
  const sameStatus = prior?.status === status;
  const error = patch.error === undefined ? undefined : clip(patch.error);
  return {
    node_id: nodeId,
    pid,
    status,
    since: sameStatus ? prior!.since : now.toISOString(),
    endpoint: patch.endpoint ?? prior?.endpoint ?? "",
    last_heartbeat_ack_at: patch.heartbeatAck?.toISOString() ??
      (sameStatus ? prior?.last_heartbeat_ack_at : undefined),
    last_error: error ?? prior?.last_error,
    last_error_at: error !== undefined
      ? (patch.errorAt ?? now).toISOString()
      : prior?.last_error_at,
    auth: patch.auth?.state ?? prior?.auth,
    auth_detail: patch.auth?.detail ?? prior?.auth_detail,
    failures: patch.failures ?? prior?.failures ?? 0,
    failing_since: patch.failingSince?.toISOString() ?? prior?.failing_since,
    version: VERSION,
    supervised: patch.supervised ?? (prior?.pid === pid ? prior?.supervised : undefined),
  };
}

function clip(message: string): string {
  if (message.length <= LAST_ERROR_MAX_CHARS) return message;
  let cut = LAST_ERROR_MAX_CHARS - 1;
  // Never half a surrogate pair.
  if (/[\uD800-\uDBFF]/.test(message[cut - 1])) cut--;
  return message.slice(0, cut) + "…";
}

/**
 * state.json as the daemon keeps it: updates are applied in order (a heartbeat's refresh and the
 * stream's own events may come at once), each on top of the last, and written atomically. A
 * write that fails is not fatal: the file is only a report.
 */
export class DaemonStateFile {
  #current: DaemonState | undefined;
  #queue: Promise<void> = Promise.resolve();

  private constructor(readonly path: string, previous: DaemonState | undefined) {
    this.#current = previous;
  }

  static async open(path: string): Promise<DaemonStateFile> {
    return new DaemonStateFile(path, await readDaemonState(path));
  }

  /** The state as of the last update (or the file found at start). */
  get current(): DaemonState | undefined {
    return this.#current;
  }

  /** The part of the state that belongs to `nodeId` (nothing when it was another node's). */
  of(nodeId: string): DaemonState | undefined {
    return this.#current?.node_id === nodeId ? this.#current : undefined;
  }

  update(nodeId: string, patch: StatePatch): Promise<void> {
    const next = nextState(this.#current, nodeId, patch, new Date());
    this.#current = next;
    this.#queue = this.#queue.then(() => writeDaemonState(this.path, next)).catch(() => {});
    return this.#queue;
  }
}

export async function readDaemonState(path: string): Promise<DaemonState | undefined> {
  const text = await readTextIfExists(path);
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null ? parsed as DaemonState : undefined;
  } catch {
    return undefined; // a torn or hand-edited file is only a cache
  }
}

export async function writeDaemonState(path: string, state: DaemonState): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
}
