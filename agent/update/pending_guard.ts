// The new daemon's side of the pending-update marker. A daemon whose version the marker names as
// the update's target is on probation: reaching Connected confirms the update (the marker is
// deleted); the deadline passing first makes it switch back to the previous version and abort,
// so the daemon exits non-zero and its service manager starts the previous binary. The window
// runs from the new version's first start (marker.ts), so a daemon that crashed and was
// restarted after it rolls back at once.
import { AegisError } from "../../shared/errors.ts";
import type { EdgePaths } from "../state/paths.ts";
import { updateLayout } from "./layout.ts";
import { clearMarker, readMarker, type UpdateMarker, writeMarker } from "./marker.ts";
// stage.ts (and the release download and verification it brings) is imported only to roll back:
// every daemon arms a guard, and keeps what it loads for as long as it runs.

export class PendingUpdateGuard {
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #settled = false;
  /** Set once the guard rolled back: the error the daemon exits with. */
  rolledBack: AegisError | undefined;

  private constructor(
    private readonly paths: EdgePaths,
    private readonly marker: UpdateMarker,
    private readonly deadline: Date,
    private readonly log: (line: string) => void,
    private readonly lastError: () => string | undefined,
  ) {}

  /** Aborted when the guard rolled back. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** A guard when this daemon is the version a pending update switched to; otherwise none. */
  static async arm(
    paths: EdgePaths,
    version: string,
    log: (line: string) => void,
    lastError: () => string | undefined = () => undefined,
  ): Promise<PendingUpdateGuard | undefined> {
    const marker = await readMarker(updateLayout(paths).marker);
    if (marker?.state !== "pending" || marker.to_version !== version) return undefined;
    const started = await firstStart(updateLayout(paths).marker, marker);
    const window = Date.parse(marker.deadline) - Date.parse(marker.started_at);
    const deadline = new Date(Math.max(Date.parse(marker.deadline), started + window));
    const guard = new PendingUpdateGuard(paths, marker, deadline, log, lastError);
    const left = deadline.getTime() - Date.now();
    log(
      `on probation after the update from ${marker.from_version}: Connected within ${
        Math.max(0, Math.round(left / 1000))
      }s or back to ${marker.from_version}`,
    );
    if (left <= 0) await guard.#rollBack();
    else guard.#timer = setTimeout(() => void guard.#rollBack(), left);
    return guard;
  }

  /**
   * The daemon is ending with an error (refused, a config it cannot read, a bug) while this
   * version is on probation. Its exit status may tell the supervisor not to restart it (77:
   * systemd's RestartPreventExitStatus), and then no daemon would ever reach the deadline to
   * roll back: the host would sit on the new version with nothing running. So it goes back now,
   * and the error becomes UPDATE_ROLLED_BACK (exit 75: restarted, onto the previous version).
   * Stateless (reads the marker), so it covers errors thrown before the guard was armed too.
   */
  static async abandon(
    paths: EdgePaths,
    version: string,
    error: unknown,
    log: (line: string) => void,
  ): Promise<unknown> {
    if (error instanceof AegisError && error.code === "UPDATE_ROLLED_BACK") return error;
    const layout = updateLayout(paths);
    const marker = await readMarker(layout.marker).catch(() => undefined);
    if (marker?.state !== "pending" || marker.to_version !== version) return error;
    const reason = `version ${version} stopped before it reached Connected: ${
      (error as Error)?.message ?? String(error)
    }`;
    try {
      const { rollBack } = await import("./stage.ts");
      await rollBack(layout, marker, reason);
    } catch (failure) {
      log(`✖ ${reason}; switching back failed: ${(failure as Error).message}`);
      return error;
    }
    log(`✖ ${reason}; switched back to ${marker.from_version}`);
    return new AegisError("UPDATE_ROLLED_BACK", reason, { cause: error });
  }

  /** The stream is up: the update holds. */
  async connected(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    await clearMarker(updateLayout(this.paths).marker).catch(() => {});
    this.log(`update from ${this.marker.from_version} to ${this.marker.to_version} confirmed`);
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }

  async #rollBack(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    const last = this.lastError();
    const reason =
      `version ${this.marker.to_version} did not reach Connected by ${this.deadline.toISOString()}` +
      (last ? ` (last error: ${last})` : "");
    try {
      const { rollBack } = await import("./stage.ts");
      await rollBack(updateLayout(this.paths), this.marker, reason);
      this.log(`✖ ${reason}; switched back to ${this.marker.from_version} and exiting`);
    } catch (error) {
      // `current` still names this version: exiting would only have the supervisor start this
      // same binary again, which would fail the same way at once, forever (an exec loop with no
      // daemon ever up). Staying up on the new version is the better of the two; a Connected
      // from here on confirms it after all.
      this.log(
        `✖ ${reason}; switching back to ${this.marker.from_version} failed (${
          (error as Error).message
        }): staying on ${this.marker.to_version}`,
      );
      this.#settled = false;
      return;
    }
    this.rolledBack = new AegisError("UPDATE_ROLLED_BACK", reason);
    this.#controller.abort();
  }
}

/** The first start of the new version, recorded in the marker by that start. */
async function firstStart(path: string, marker: UpdateMarker): Promise<number> {
  if (marker.first_start_at) return Date.parse(marker.first_start_at);
  const now = new Date();
  await writeMarker(path, { ...marker, first_start_at: now.toISOString() });
  return now.getTime();
}
