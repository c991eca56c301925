// `aegis update` end to end: check, install side by side, switch, restart, and wait for the new
// daemon to say Connected; when it does not by the deadline, switch back, restart, and fail.
// Whoever notices first rolls back: the new daemon itself (it reads the marker at start) or this
// command, a few seconds after the deadline, in case the new daemon never ran far enough to.
import { AegisError } from "../../shared/errors.ts";
import type { ReleasePublicKey } from "../../shared/release/minisign.ts";
import type { EdgePaths } from "../state/paths.ts";
import { type UpdateLayout, updateLayout } from "./layout.ts";
import { switchTo } from "./switch.ts";
import { readMarker } from "./marker.ts";
import { releaseSource } from "./release_source.ts";
import { planRestart, restart, type RestartPlan } from "./restart.ts";
import {
  activate,
  checkRelease,
  ensureRollbackTarget,
  installRelease,
  requireNoPendingUpdate,
  rollBack,
} from "./stage.ts";
import { type Outcome, waitForVersion } from "./wait.ts";
import { holdUpdateLock, type UpdateLock } from "./update_lock.ts";

/** How long past its own deadline we leave the new daemon to roll itself back before we do. */
const SELF_ROLLBACK_GRACE_MS = 3_000;
/** How long the previous version gets to reconnect after a rollback, for the report only. */
const RECOVERY_WAIT_MS = 60_000;

export interface UpdateOptions {
  check: boolean;
  version?: string;
  deadlineMs: number;
  caFile?: string;
  publicKey: () => ReleasePublicKey;
}

export interface UpdateResult {
  status: "current" | "available" | "updated" | "installed";
  from: string;
  to: string;
  restart?: "service" | "signal" | "none";
  /** From the switch until the new daemon said Connected. */
  connect_secs?: number;
  total_secs: number;
}

export async function runUpdate(
  paths: EdgePaths,
  options: UpdateOptions,
  log: (line: string) => void,
): Promise<UpdateResult> {
  const started = Date.now();
  const secs = (from: number) => Math.round((Date.now() - from) / 100) / 10;
  // Fail closed before any network: a binary without a release key updates nothing.
  const publicKey = options.publicKey();
  const layout = updateLayout(paths);
  const source = await releaseSource(paths, options.caFile);
  let lock: UpdateLock | undefined;
  try {
    // The lock before the check: `from` (what `current` names) must not move between the check
    // and the switch. A fleet upgrade finishing in between would otherwise have this one "adopt"
    // itself as the old version, switch `current` back to it, and delete the running version.
    if (!options.check) lock = await holdUpdateLock(paths);
    const release = await checkRelease(source, layout, publicKey, options.version);
    if (release.kind === "current") {
      return {
        status: "current",
        from: release.version,
        to: release.version,
        total_secs: secs(started),
      };
    }
    const { from, to } = release;
    if (options.check) return { status: "available", from, to, total_secs: secs(started) };
    await requireNoPendingUpdate(layout);
    const plan = await planRestart(paths, layout);
    log(`updating ${from} → ${to}`);
    await ensureRollbackTarget(layout, from);
    await installRelease(source, layout, release);
    log(`verified and installed ${to} beside ${from}`);
    const before = plan.kind === "signal"
      ? plan.pid
      : plan.kind === "service"
      ? plan.daemonPid
      : undefined;
    // Without a daemon to judge it, a marker would only roll back the next start: none then.
    const waits = plan.kind !== "none";
    const switched = Date.now();
    await activate(layout, from, to, waits ? options.deadlineMs : undefined);
    log(`switched to ${to}; restarting the daemon (deadline ${options.deadlineMs / 1000}s)`);
    await restart(plan, log);
    if (!waits) {
      return { status: "installed", from, to, restart: plan.kind, total_secs: secs(started) };
    }
    const outcome = await awaitNewDaemon(paths, layout, {
      version: to,
      notPid: before,
      switched,
      deadlineMs: options.deadlineMs,
    });
    if (outcome.kind === "connected") {
      log(`the ${to} daemon (pid ${outcome.pid}) is connected`);
      return {
        status: "updated",
        from,
        to,
        restart: plan.kind,
        connect_secs: secs(switched),
        total_secs: secs(started),
      };
    }
    let reason: string;
    if (outcome.kind === "rolled_back") {
      reason = outcome.reason;
      log(`the ${to} daemon rolled back by itself: ${reason}`);
    } else {
      reason = `the ${to} daemon did not reach Connected within ${options.deadlineMs / 1000}s` +
        (outcome.lastError ? ` (its last error: ${outcome.lastError})` : "");
      await rollBackHere(paths, layout, from, reason, plan, log);
    }
    const recovered = await waitForVersion(paths, undefined, {
      version: from,
      notPid: before,
      until: Date.now() + RECOVERY_WAIT_MS,
    });
    throw new AegisError("UPDATE_ROLLED_BACK", `update to ${to} rolled back: ${reason}`, {
      details: {
        from,
        to,
        running: from,
        previous_connected: recovered.kind === "connected" ? "yes" : "not yet",
        // From the switch to the previous version connected again: the whole cost of a bad release.
        rollback_secs: String(secs(switched)),
        total_secs: String(secs(started)),
      },
    });
  } finally {
    await lock?.release();
    source.close();
  }
}

/**
 * Waits for the new daemon's verdict. One that ran (it stamped the marker) judges itself by its
 * own window, so it gets that plus a grace; one that never got as far as reading the marker
 * (it exits or crashes at start) is given up on at the deadline.
 */
async function awaitNewDaemon(
  paths: EdgePaths,
  layout: UpdateLayout,
  want: { version: string; notPid?: number; switched: number; deadlineMs: number },
): Promise<Outcome> {
  const outcome = await waitForVersion(paths, layout.marker, {
    ...want,
    until: want.switched + want.deadlineMs,
  });
  const stamped = (await readMarker(layout.marker))?.first_start_at;
  if (outcome.kind !== "timeout" || !stamped) return outcome;
  return await waitForVersion(paths, layout.marker, {
    ...want,
    until: Date.parse(stamped) + want.deadlineMs + SELF_ROLLBACK_GRACE_MS,
  });
}

/** Switches back to `from` and restarts: the new daemon did not undo itself in time. */
async function rollBackHere(
  paths: EdgePaths,
  layout: UpdateLayout,
  from: string,
  reason: string,
  plan: RestartPlan,
  log: (line: string) => void,
): Promise<void> {
  const marker = await readMarker(layout.marker);
  if (marker) await rollBack(layout, marker, reason);
  else await switchTo(layout, from);
  log(`${reason}; switched back to ${from}, restarting it`);
  // The daemon to stop now is the new one, not the one the update stopped.
  await restart(await planRestart(paths, layout).catch(() => plan), log);
}
