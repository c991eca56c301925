// state.json: what the daemon last knew, for `aegis edge status` when the controller cannot be
// asked, and the failure count that paces reconnects across restarts of the daemon.
import { readTextIfExists, writeFileAtomic } from "../../shared/fs/atomic.ts";

export interface DaemonState {
  node_id: string;
  pid: number;
  status: "connected" | "disconnected" | "refused";
  since: string;
  endpoint: string;
  last_heartbeat_ack_at?: string;
  last_error?: string;
  failures: number;
}

export async function readDaemonState(path: string): Promise<DaemonState | undefined> {
  const text = await readTextIfExists(path);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as DaemonState;
  } catch {
    return undefined; // a torn or hand-edited file is only a cache
  }
}

export async function writeDaemonState(path: string, state: DaemonState): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
}
