// Whether something restarts this daemon when it exits. A daemon that exits to let a new version
// start must know that, or an update would simply stop it. Only precise signs count (a shell in
// a desktop session inherits INVOCATION_ID from its terminal's unit, so that one does not): on
// Linux our own systemd unit's cgroup, on macOS launchd's XPC_SERVICE_NAME for our label. Any
// other supervisor (NSSM, runit, a container's restart policy) says so with
// `aegis edge run --supervised`.
import { readFile } from "node:fs/promises";
import { LAUNCHD_LABEL, SERVICE_NAME } from "../service/types.ts";

export async function isSupervised(
  flag: boolean,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<boolean> {
  if (flag || env.XPC_SERVICE_NAME === LAUNCHD_LABEL) return true;
  if (Deno.build.os !== "linux") return false;
  const cgroup = await readFile("/proc/self/cgroup", "utf8").catch(() => "");
  return cgroup.includes(`/${SERVICE_NAME}.service`);
}

/** The daemon's exit status when it stops so that its supervisor starts the switched binary. */
export const RESTART_FOR_UPDATE_EXIT = 75;
