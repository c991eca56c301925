// Self-update: `aegis update`, the daemon's side of a fleet upgrade, and the pending-update
// marker that lets a new version that does not reach Connected undo itself. Layout on disk:
// ~/.aegis/edge/versions/<version>/aegis side by side, `current` (a symlink; bin\ on Windows)
// the path the service runs, update.json the marker (see layout.ts, marker.ts).
export { runUpdate } from "./update.ts";
export type { UpdateOptions, UpdateResult } from "./update.ts";
export { parseUpdateArguments, updateFromDaemon } from "./daemon_update.ts";
export type { DaemonUpdateResult, UpdateArguments } from "./daemon_update.ts";
export { PendingUpdateGuard } from "./pending_guard.ts";
export { isSupervised, RESTART_FOR_UPDATE_EXIT } from "./supervised.ts";
