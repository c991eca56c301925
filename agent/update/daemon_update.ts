// A fleet upgrade as the daemon runs it (`node.update`, sent by the controller over the stream):
// the same checks and install as `aegis update`, then the switch with a pending marker. The
// daemon cannot wait for its own successor, so after reporting the switch it exits and its
// service manager starts the new binary, which confirms the update by connecting or rolls it
// back at the deadline (pending_guard.ts). The controller confirms by the version the host
// reports when it reconnects, not by this answer.
import { resolve } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { releaseVerificationKey } from "../../shared/release/build_info.ts";
import { VERSION_PATTERN } from "../../shared/release/manifest.ts";
import type { ReleasePublicKey } from "../../shared/release/minisign.ts";
import { VERSION } from "../../shared/version.ts";
import type { EdgePaths } from "../state/paths.ts";
import { selfCommand, stableBinary } from "../self.ts";
import { currentVersion, type UpdateLayout, updateLayout } from "./layout.ts";
import { holdUpdateLock, type UpdateLock } from "./update_lock.ts";
import { releaseSource } from "./release_source.ts";
import {
  activate,
  checkRelease,
  ensureRollbackTarget,
  installRelease,
  requireNoPendingUpdate,
} from "./stage.ts";

/** The new daemon's time to reach Connected when the operator names none. */
export const DEFAULT_CONNECT_DEADLINE_SECS = 60;

export interface UpdateArguments {
  version?: string;
  connect_deadline_secs?: number;
}

export interface DaemonUpdateContext {
  paths: EdgePaths;
  /** Whether something restarts this daemon when it exits; without it the switch is refused. */
  supervised: boolean;
  caFile?: string;
  log: (line: string) => void;
  /** Tests only: the release key (default: the one compiled in) and how this daemon runs. */
  publicKey?: () => ReleasePublicKey;
  self?: { command: string[]; execPath: string };
}

export type DaemonUpdateResult =
  | { status: "current"; version: string }
  | { status: "switched"; from: string; to: string; connect_deadline_secs: number };

export function parseUpdateArguments(json: string): UpdateArguments {
  const raw = JSON.parse(json || "{}") as Record<string, unknown>;
  const version = raw.version;
  const deadline = raw.connect_deadline_secs;
  if (version !== undefined && (typeof version !== "string" || !VERSION_PATTERN.test(version))) {
    throw new AegisError("INVALID_ARGUMENT", "version must be a release version (1.2.3)");
  }
  if (
    deadline !== undefined &&
    (typeof deadline !== "number" || !Number.isInteger(deadline) || deadline < 5 || deadline > 3600)
  ) {
    throw new AegisError("INVALID_ARGUMENT", "connect_deadline_secs must be 5..3600");
  }
  return { version, connect_deadline_secs: deadline };
}

export async function updateFromDaemon(
  ctx: DaemonUpdateContext,
  args: UpdateArguments,
): Promise<DaemonUpdateResult> {
  const publicKey = (ctx.publicKey ?? releaseVerificationKey)();
  const layout = updateLayout(ctx.paths);
  const source = await releaseSource(ctx.paths, ctx.caFile);
  let lock: UpdateLock | undefined;
  try {
    // The lock before the check, as in update.ts: `from` must not move until the switch.
    lock = await holdUpdateLock(ctx.paths);
    // Before any network: the switch below only takes effect if this daemon runs the managed path.
    await requireManagedDaemon(layout, ctx.self);
    // Never backwards from here: the version named in a fleet request comes from the controller,
    // and a controller that was taken over must not be able to roll hosts back to a signed
    // release with a known hole. Going back is `aegis update --version` on the host itself.
    const release = await checkRelease(source, layout, publicKey, args.version, {
      allowDowngrade: false,
    });
    if (release.kind === "current") return { status: "current", version: release.version };
    if (!ctx.supervised) {
      throw new AegisError(
        "UPDATE_FAILED",
        "this daemon runs in the foreground with nothing to restart it; nothing was changed",
        { hint: "Run it as a service (`aegis edge service install`) or with --supervised." },
      );
    }
    await requireNoPendingUpdate(layout);
    const deadlineSecs = args.connect_deadline_secs ?? DEFAULT_CONNECT_DEADLINE_SECS;
    await ensureRollbackTarget(layout, release.from);
    await installRelease(source, layout, release);
    await activate(layout, release.from, release.to, deadlineSecs * 1000);
    ctx.log(`fleet upgrade: switched ${release.from} → ${release.to}; restarting into it`);
    return {
      status: "switched",
      from: release.from,
      to: release.to,
      connect_deadline_secs: deadlineSecs,
    };
  } finally {
    await lock?.release();
    source.close();
  }
}

/**
 * A fleet upgrade switches `current` and exits for the supervisor to restart the daemon; unlike
 * `aegis update`, the daemon cannot move its own service onto the managed path. So it must
 * already run from there and be the version `current` names. Otherwise (a service installed by
 * install.sh runs /usr/local/bin/aegis) the restart would start the old binary again while
 * `current` names the new one, and every later upgrade would wrongly answer "already at" it.
 */
export async function requireManagedDaemon(
  layout: UpdateLayout,
  self: { command: string[]; execPath: string } = {
    command: selfCommand(),
    execPath: Deno.execPath(),
  },
): Promise<void> {
  const current = await currentVersion(layout);
  // A compiled binary knows its path: `current/aegis`, or the version file it resolves to. A
  // source run (the test fixtures) is judged by the version alone.
  const compiled = self.command.length === 1;
  const fromManaged = !compiled ||
    [self.execPath, stableBinary(self.execPath)].some((p) => resolve(p) === resolve(layout.bin));
  if (current === VERSION && fromManaged) return;
  throw new AegisError(
    "UPDATE_FAILED",
    `this daemon (${VERSION}) does not run the managed binary ${layout.bin}` +
      (current ? ` (which is ${current})` : "") + "; nothing was changed",
    {
      hint:
        "Run `aegis update` once on the host: it installs the release side by side and moves the service onto the managed path; fleet upgrades work from then on.",
    },
  );
}
