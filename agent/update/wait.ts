// Waits for the outcome of a switch, as the daemon reports it: state.json says Connected from a
// new process running the new version, or the marker says the new daemon rolled itself back.
import { readDaemonState } from "../daemon/state.ts";
import type { EdgePaths } from "../state/paths.ts";
import { readMarker } from "./marker.ts";

export type Outcome =
  | { kind: "connected"; pid: number }
  | { kind: "rolled_back"; reason: string }
  | {
    kind: "timeout";
    lastError?: string;
  };

export async function waitForVersion(
  paths: EdgePaths,
  marker: string | undefined,
  want: { version: string; notPid?: number; until: number },
): Promise<Outcome> {
  let lastError: string | undefined;
  while (Date.now() < want.until) {
    const state = await readDaemonState(paths.state);
    if (
      state?.status === "connected" && state.version === want.version && state.pid !== want.notPid
    ) {
      return { kind: "connected", pid: state.pid };
    }
    if (state?.version === want.version) lastError = state.last_error;
    const m = marker ? await readMarker(marker) : undefined;
    if (m?.state === "rolled_back" && m.to_version === want.version) {
      return { kind: "rolled_back", reason: m.reason ?? "the new daemon rolled back" };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { kind: "timeout", lastError };
}
