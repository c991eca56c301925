// The edge daemon: keep one stream to the controller open, heartbeat on it, and come back with
// jittered backoff whenever it drops. It keeps its own credentials alive: at start and on every
// heartbeat it finishes a rotation that was cut short and refreshes a token that is due or
// expired, and when the controller refuses its token it proves its key for a new one. It stops
// only when told to, or when the controller refuses this node for good (revoked, or the key
// itself refused): then it says so and what to do.
import { hostname } from "node:os";
import { AegisError } from "../../shared/errors.ts";
import { isRetryable } from "../../shared/rpc_errors.ts";
import type { Endpoint } from "../../shared/endpoint.ts";
import type { EdgePaths } from "../state/paths.ts";
import { type Identity, loadIdentity } from "../state/identity.ts";
import { createNodeClient } from "../client/node_client.ts";
import { EdgeConnection } from "./connection.ts";
import {
  backoffDelay,
  backoffPolicy,
  refusalDelay,
  refusalRetryAfterMs,
  sleep,
} from "./backoff.ts";
import { type AuthState, DaemonStateFile } from "./state.ts";
import { type Emit, toolCallRequest, ToolRunner } from "../tools/mod.ts";
import { holdDaemonLock } from "./instance_lock.ts";
import { isNodeTool, runNodeTool } from "./node_tools.ts";
import { secretResolver } from "../secrets/store.ts";
import { exists, readTextIfExists } from "../../shared/fs/atomic.ts";
import { DEFAULT_KEEP_OLD_MS } from "../keys/swap.ts";
import { sweepArchive } from "../keys/archive.ts";
import { VERSION } from "../../shared/version.ts";
import { PendingUpdateGuard } from "../update/pending_guard.ts";
import { RESTART_FOR_UPDATE_EXIT } from "../update/supervised.ts";
// What the daemon needs only now and then (finishing a rotation, refreshing its token; in
// node_tools.ts and pending_guard.ts the key rotation, self-update and roll-back) is imported
// where it is used:
// a daemon keeps whatever it loads for as long as it runs, and an idle one needs none of it.
// The specifiers stay string literals, so `deno compile` still embeds them (and `aegis
// --version` still loads them: agent/cli/entry.ts).
import type { NodeToolHooks } from "./node_tools.ts";

interface StreamLink {
  current: EdgeConnection | undefined;
}

export type Log = (message: string) => void;

/** A stream up this long (or acked a heartbeat) counts as a success for reconnect pacing. */
const HEALTHY_AFTER_MS = 10_000;

/**
 * Conditions of the path or the host that fix themselves or are fixed elsewhere (a certificate
 * renewed on the controller, a clock set right by NTP, a proxy back in order): the daemon waits
 * and tries again, saying why each time, and never stops for them.
 */
const TRANSIENT_FOR_DAEMON = new Set(["TLS_FAILED", "CLOCK_SKEW", "TIMED_OUT", "NODE_OFFLINE"]);

/** Everything but a refusal of this node (revoked, key or Hello refused) is tried again. */
function daemonRetries(error: AegisError): boolean {
  return isRetryable(error) || TRANSIENT_FOR_DAEMON.has(error.code);
}

/** Refusals of the token, not of the node: a key-proven refresh (or finishing a rotation) cures them. */
const TOKEN_REFUSALS = new Set(["NODE_TOKEN_INVALID", "NODE_TOKEN_EXPIRED", "KEY_TOKEN_MISMATCH"]);

export interface DaemonOptions {
  paths: EdgePaths;
  log: Log;
  signal: AbortSignal;
  caFile?: string;
  /** Something restarts this daemon when it exits (see agent/update/supervised.ts). */
  supervised?: boolean;
}

/** Runs until the signal aborts (returns 0) or the node is refused (throws the typed error). */
export async function runDaemon(given: DaemonOptions): Promise<number> {
  try {
    return await serveDaemon(given);
  } catch (error) {
    // A version on probation after an update that ends with an error goes back first, so its
    // exit status (77 stops systemd's restarts) cannot strand the host on it (pending_guard.ts).
    throw await PendingUpdateGuard.abandon(given.paths, VERSION, error, given.log);
  }
}

async function serveDaemon(given: DaemonOptions): Promise<number> {
  const { paths, log } = given;
  // Before anything is written: a second daemon for this host waits for the first to stop.
  const lock = await holdDaemonLock(paths, given.signal, log);
  if (!lock) return 0;
  const state = await DaemonStateFile.open(paths.state);
  // Besides being told to, the daemon stops when a pending update it is the target of rolls
  // back, or when a fleet upgrade switched the binary and the supervisor must start the new one.
  const stop = new AbortController();
  const guard = await PendingUpdateGuard.arm(paths, VERSION, log, () => state.current?.last_error)
    .catch((error) => {
      log(`cannot read the pending-update marker: ${(error as Error).message}`);
      return undefined;
    });
  let restartForUpdate = false;
  const hooks: NodeToolHooks = {
    supervised: given.supervised === true,
    caFile: given.caFile,
    restart: () => {
      restartForUpdate = true;
      stop.abort();
    },
  };
  for (const source of [given.signal, guard?.signal]) {
    if (source?.aborted) stop.abort();
    source?.addEventListener("abort", () => stop.abort(), { once: true });
  }
  const options = { ...given, signal: stop.signal };
  const { signal } = options;
  let identity = await loadIdentity(paths);
  // Not connected until a stream says so, whatever a daemon before this one left in the file.
  await state.update(identity.claims.sub, {
    status: "disconnected",
    endpoint: identity.endpoints[0].display,
    supervised: given.supervised === true,
  });
  // A rotation cut short, or a token that expired while the host was off, is dealt with first.
  identity = await maintainIdentity(paths, identity, log, authReporter(state, identity));
  let failures = state.of(identity.claims.sub)?.failures ?? 0;
  // When this run of failures began (kept across a crash, like the count): it bounds the wait.
  const recorded = state.of(identity.claims.sub)?.failing_since;
  let failingSince = failures > 0 && recorded ? Date.parse(recorded) || undefined : undefined;
  /** Refusals in a row that named a turn in line (refusalDelay widens its jitter with them). */
  let refusals = 0;
  const failed = () => {
    failures++;
    failingSince ??= Date.now();
  };
  let endpointIndex = 0;
  // One renewal per refusal: a token refused again right after a renewal ends the daemon.
  let renewed = false;
  log(`aegis edge daemon for node ${identity.claims.sub} (${identity.fingerprint})`);
  // One runner for the daemon's life: a call keeps running across a reconnect, and its later
  // events go out on whichever stream is current.
  const link: StreamLink = { current: undefined };
  const toolContext = {
    config: identity.config,
    resolveSecret: secretResolver(paths.secrets),
    log,
  };
  const emit: Emit = (callId, event) => {
    link.current?.send({ case: "toolEvent", value: { callId, event } as never });
  };
  const runner = new ToolRunner(toolContext, emit);
  signal.addEventListener("abort", () => void runner.shutdown(), { once: true });
  const removeGuard = lastResortGuard(link, log);
  try {
    while (!signal.aborted) {
      const endpoint = identity.endpoints[endpointIndex % identity.endpoints.length];
      let retryAfterMs: number | undefined;
      /** The controller refused the stream for lack of room and said when to come back. */
      let refusedFor: number | undefined;
      let healthy = false;
      try {
        retryAfterMs = await serveOneStream(
          identity,
          endpoint,
          options,
          { runner, link, emit, hooks },
          state,
          {
            connected: () => {
              renewed = false;
              void guard?.connected();
            },
            // Only a stream that stays up resets the pace: one dropped at once (replaced by a
            // twin daemon, refused after Hello) keeps backing off instead of looping hot.
            healthy: () => {
              healthy = true;
              failures = 0;
              refusals = 0;
              failingSince = undefined;
            },
          },
        );
        if (!healthy) failed();
      } catch (error) {
        const aegis = error instanceof AegisError
          ? error
          : new AegisError("INTERNAL", String(error));
        // Re-enrolled meanwhile (a new node with this key replaces and revokes the old one):
        // the identity on disk is the new node's, so go on with it rather than stop.
        const onDisk = aegis.code === "NODE_REVOKED"
          ? await loadIdentity(paths).catch(() => undefined)
          : undefined;
        if (onDisk && onDisk.claims.sub !== identity.claims.sub) {
          log(`node ${identity.claims.sub} was replaced by ${onDisk.claims.sub}; continuing as it`);
          identity = onDisk;
          continue;
        }
        let failure = aegis;
        if (TOKEN_REFUSALS.has(aegis.code) && !renewed) {
          const renewal = await renewCredentials(paths, aegis, log, authReporter(state, identity));
          if (renewal === true) {
            renewed = true;
            identity = await loadIdentity(paths);
            continue;
          }
          // A renewal that could not reach a controller says nothing about the key: wait and try
          // the stream (and, if refused again, the renewal) later. A refused renewal is final.
          failure = renewal;
          if (!daemonRetries(renewal)) renewed = true;
        }
        if (!daemonRetries(failure)) {
          await state.update(identity.claims.sub, {
            status: "refused",
            endpoint: endpoint.display,
            failures,
            error: failure.message,
            auth: refusalAuth(failure, identity),
          });
          log(`✖ the controller refused this node: ${failure.message}`);
          if (failure.hint) log(`  → ${failure.hint}`);
          throw failure;
        }
        failed();
        refusedFor = refusalRetryAfterMs(failure, backoffPolicy(identity.config.edge));
        refusals = refusedFor === undefined ? 0 : refusals + 1;
        endpointIndex++;
        log(`stream to ${endpoint.display} failed: ${failure.message}`);
        if (failure.hint && !isRetryable(failure)) log(`  → ${failure.hint}`);
        await state.update(identity.claims.sub, {
          status: "disconnected",
          endpoint: endpoint.display,
          failures,
          failingSince: new Date(failingSince!),
          error: failure.message,
          auth: expiredMeanwhile(identity, state.of(identity.claims.sub)?.auth),
        });
      }
      if (signal.aborted) break;
      // The controller's hint (a spread return after its restart, or the turn a refusal for lack
      // of room named) plus our own jitter: a hint of 0 repeated can never make a tight loop.
      const failingFor = failingSince === undefined ? 0 : Date.now() - failingSince;
      const policy = backoffPolicy(identity.config.edge);
      const wait = refusedFor !== undefined
        ? refusalDelay(refusedFor, refusals, policy)
        : (retryAfterMs ?? 0) + backoffDelay(failures, policy, Math.random, failingFor);
      if (wait > 0) log(`reconnecting in ${(wait / 1000).toFixed(1)}s`);
      await sleep(wait, signal);
      // The key or token may have been replaced on disk (rotation, refresh, re-enrollment).
      identity = await loadIdentity(paths).catch(() => identity);
      toolContext.config = identity.config;
    }
    await runner.shutdown();
    if (guard?.rolledBack) throw guard.rolledBack;
    if (restartForUpdate) {
      log("exiting so that the service manager starts the updated binary");
      return RESTART_FOR_UPDATE_EXIT;
    }
    return 0;
  } finally {
    guard?.dispose();
    removeGuard();
    lock.release();
  }
}

/**
 * The last resort: an exception nothing caught (a bug here or in a library) must not end a daemon
 * that hosts depend on. It is logged as the bug it is and the current stream is dropped, so the
 * daemon reconnects from a clean state. Tests assert this is never reached.
 */
function lastResortGuard(link: StreamLink, log: Log): () => void {
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    report(event.error ?? event.message);
  };
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    report(event.reason);
  };
  function report(error: unknown) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`internal error (a bug, please report it); dropping the stream and reconnecting: ${text}`);
    link.current?.fail(new AegisError("INTERNAL", `internal error: ${String(error)}`));
  }
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}

/** Serves one stream until it ends; returns the controller's requested delay, if any. */
async function serveOneStream(
  identity: Identity,
  endpoint: Endpoint,
  options: DaemonOptions,
  tools: { runner: ToolRunner; link: StreamLink; emit: Emit; hooks: NodeToolHooks },
  state: DaemonStateFile,
  on: { connected: () => void; healthy: () => void },
): Promise<number | undefined> {
  const { paths, log, signal } = options;
  const nodeId = identity.claims.sub;
  // What went wrong before this stream, for the controller to show operators.
  const before = state.of(nodeId);
  const edge = identity.config.edge;
  const client = await createNodeClient(endpoint, {
    caFile: options.caFile ?? edge.ca_file,
    http2: {
      keepaliveMs: edge.keepalive_interval_secs * 1000,
      keepaliveTimeoutMs: edge.keepalive_timeout_secs * 1000,
    },
  });
  const connection = await EdgeConnection.open(
    client,
    endpoint,
    { nodeId: identity.claims.sub, key: identity.key, token: identity.token },
    identity.config,
    hostname(),
    undefined,
    {
      lastError: before?.last_error,
      lastErrorAt: before?.last_error_at ? new Date(before.last_error_at) : undefined,
      failures: before?.failures ?? 0,
    },
  ).catch((error) => {
    client.close();
    throw error;
  });
  // The connection's own death (keepalive unanswered, reset) ends the stream at once, even when
  // the runtime never tells the stream.
  const stopWatching = client.onBroken((reason) => connection.fail(reason));
  on.connected();
  tools.link.current = connection;
  log(`✔ stream connected to ${endpoint.display}`);
  await state.update(nodeId, {
    status: "connected",
    endpoint: endpoint.display,
    failures: 0,
    auth: identity.claims.exp * 1000 > Date.now()
      ? { state: "ok", detail: `the controller accepted node.token (${expiresText(identity)})` }
      : {
        // Within the controller's clock-skew leeway: good for minutes, renewed at the next beat.
        state: "token_expired",
        detail: `node.token ${
          expiresText(identity)
        }; the controller still took it (clock-skew leeway); renewing it at the next heartbeat`,
      },
  });
  const stop = () => connection.close();
  signal.addEventListener("abort", stop, { once: true });
  // Told to stop while the stream was opening: an aborted signal fires no more events.
  if (signal.aborted) stop();
  const intervalMs =
    (connection.helloAck.heartbeatIntervalSecs || identity.config.edge.heartbeat_interval_secs) *
    1000;
  const started = Date.now();
  const healthyTimer = setTimeout(on.healthy, Math.min(intervalMs, HEALTHY_AFTER_MS));
  let current = identity;
  let busy = false;
  const heartbeat = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      // A rotation or refresh (by the CLI, or due now) replaces the files; the next envelope
      // is then sealed with the new key and token, on the same stream.
      current = await maintainIdentity(paths, current, log, authReporter(state, current));
      connection.useIdentity({
        nodeId: current.claims.sub,
        key: current.key,
        token: current.token,
      });
      connection.send({
        case: "heartbeat",
        value: {
          runningCalls: tools.runner.running,
          runningCallIds: tools.runner.callIds.slice(0, 1024),
          uptimeSecs: BigInt(Math.floor((Date.now() - started) / 1000)),
        } as never,
      });
    } finally {
      busy = false;
    }
  }, intervalMs);
  try {
    for await (const message of connection.messages()) {
      const body = message.body;
      if (body.case === "heartbeatAck") {
        on.healthy();
        await state.update(nodeId, {
          status: "connected",
          endpoint: endpoint.display,
          heartbeatAck: new Date(),
        });
      } else if (body.case === "toolCall") {
        if (isNodeTool(body.value.tool)) {
          void runNodeTool(body.value, paths, tools.emit, log, tools.hooks, { client, endpoint });
        } else tools.runner.start(toolCallRequest(body.value));
      } else if (body.case === "toolCancel") {
        tools.runner.cancel(body.value.callId, body.value.reason);
      } else if (body.case === "goaway") {
        log(`controller says goaway (${body.value.code}): ${body.value.message}`);
        return body.value.retryAfterMs;
      }
    }
    if (!signal.aborted) log(`stream to ${endpoint.display} ended`);
    return undefined;
  } finally {
    clearInterval(heartbeat);
    clearTimeout(healthyTimer);
    stopWatching();
    if (tools.link.current === connection) tools.link.current = undefined;
    signal.removeEventListener("abort", stop);
    connection.close();
    client.close();
    if (signal.aborted) {
      await state.update(nodeId, { status: "disconnected", endpoint: endpoint.display });
    }
  }
}

type ReportAuth = (state: AuthState, detail: string) => Promise<void>;

/** Records what the daemon learns about its credentials in state.json, for `aegis edge status`. */
function authReporter(state: DaemonStateFile, identity: Identity): ReportAuth {
  return (auth, detail) => state.update(identity.claims.sub, { auth: { state: auth, detail } });
}

function expiresText(identity: Identity): string {
  const exp = new Date(identity.claims.exp * 1000);
  return `${exp.getTime() <= Date.now() ? "expired" : "expires"} ${exp.toISOString()}`;
}

/** How a refusal that ends the daemon leaves its credentials. */
function refusalAuth(
  refusal: AegisError,
  identity: Identity,
): { state: AuthState; detail: string } {
  const hint = refusal.hint ? ` → ${refusal.hint}` : "";
  return {
    state: refusal.code === "NODE_TOKEN_EXPIRED" ? "token_expired" : "refused",
    detail: `the controller refused this node: ${refusal.message} (node.token ${
      expiresText(identity)
    })${hint}`,
  };
}

/** A token that ran out while the controller could not be reached (unless already said). */
function expiredMeanwhile(
  identity: Identity,
  current: AuthState | undefined,
): { state: AuthState; detail: string } | undefined {
  if (identity.claims.exp * 1000 > Date.now() || current === "token_expired") return undefined;
  return {
    state: "token_expired",
    detail: `node.token ${
      expiresText(identity)
    }; it is renewed with the key once the controller answers`,
  };
}

/** Finishes a rotation cut short, reloads the identity when its files changed, refreshes the token
 * when it is due (or expired: the server allows a grace), and sweeps archived keys. Failures are
 * logged: the old identity stays in use until one succeeds. */
async function maintainIdentity(
  paths: EdgePaths,
  identity: Identity,
  log: Log,
  reportAuth: ReportAuth,
): Promise<Identity> {
  try {
    let current = identity;
    if (await exists(paths.pendingKey)) {
      const { finishPendingRotation } = await import("../keys/rotate.ts");
      const finished = await finishPendingRotation(paths, DEFAULT_KEEP_OLD_MS);
      if (finished) log(`finished an interrupted key rotation: now ${finished.newFingerprint}`);
      current = await loadIdentity(paths);
    }
    const onDisk = (await readTextIfExists(paths.nodeToken))?.trim();
    if (onDisk && onDisk !== current.token) current = await loadIdentity(paths);
    const marginMs = current.config.edge.token_refresh_margin_secs * 1000;
    if (current.claims.exp * 1000 - Date.now() < marginMs) {
      let expires: Date;
      try {
        const { refreshToken } = await import("../keys/refresh.ts");
        ({ expires } = await refreshToken(paths));
      } catch (error) {
        const expired = current.claims.exp * 1000 <= Date.now();
        await reportAuth(
          expired ? "token_expired" : "refreshing",
          `node.token ${expiresText(current)}; renewing it failed${
            expired ? "" : " (retried every heartbeat)"
          }: ${(error as Error).message}`,
        );
        throw error;
      }
      log(`refreshed the node token; it now expires ${expires.toISOString()}`);
      await reportAuth("ok", `refreshed node.token; it expires ${expires.toISOString()}`);
      current = await loadIdentity(paths);
    }
    const swept = await sweepArchive(paths.archive);
    if (swept.length) log(`deleted ${swept.length} archived key(s) past --keep-old`);
    return current;
  } catch (error) {
    log(
      `identity upkeep failed (still using the current key and token): ${(error as Error).message}`,
    );
    return identity;
  }
}

/**
 * The controller refused the token (blacklisted by a refresh whose answer was lost, superseded,
 * expired, or bound to a key a rotation replaced). The key is the identity: finish a pending
 * rotation, then re-attest with the key for a fresh token. True when the host has one now.
 */
async function renewCredentials(
  paths: EdgePaths,
  refusal: AegisError,
  log: Log,
  reportAuth: ReportAuth,
): Promise<true | AegisError> {
  log(`the controller refused the node token (${refusal.message}); renewing it with the key`);
  await reportAuth(
    "refreshing",
    `the controller refused node.token (${refusal.message}); renewing it with the key`,
  );
  try {
    const { finishPendingRotation } = await import("../keys/rotate.ts");
    const finished = await finishPendingRotation(paths, DEFAULT_KEEP_OLD_MS);
    if (finished) {
      log(`finished an interrupted key rotation: now ${finished.newFingerprint}`);
      await reportAuth("ok", `finished an interrupted key rotation: ${finished.newFingerprint}`);
      return true;
    }
  } catch (error) {
    // The pending key stays (it goes only when the controller provably holds the old key); a
    // token for the old key, if that is still the node's, lets the next heartbeat finish it.
    log(`could not finish the interrupted key rotation yet: ${(error as Error).message}`);
  }
  try {
    const { refreshToken } = await import("../keys/refresh.ts");
    const { expires } = await refreshToken(paths);
    log(`refreshed the node token; it now expires ${expires.toISOString()}`);
    await reportAuth("ok", `renewed node.token with the key; it expires ${expires.toISOString()}`);
    return true;
  } catch (error) {
    log(`could not renew the node token: ${(error as Error).message}`);
    return error instanceof AegisError ? error : new AegisError("INTERNAL", String(error));
  }
}
