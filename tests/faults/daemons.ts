// A small fleet of real daemons for fault scenarios, and the checks every scenario ends with:
// each daemon is still the same running process, and never reached the last-resort guard.
import assert from "node:assert/strict";
import type { ControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";
import { type Background, eventually } from "../support/processes.ts";

export interface FleetHost {
  host: Host;
  nodeId: string;
  daemon: Background;
  exited: boolean;
}

/** Enrolls `count` hosts, edits each one's edge config with `edit`, and starts their daemons. */
export async function startFleet(
  controller: ControllerProcess,
  count: number,
  edit: (config: string) => string = (c) => c,
): Promise<FleetHost[]> {
  const fleet: FleetHost[] = [];
  for (let i = 0; i < count; i++) {
    const { host, nodeId } = await enrollNewHost(controller, { name: `fault-${i}` });
    const configPath = `${host.home}/.aegis/edge/aegis-config.yaml`;
    await Deno.writeTextFile(configPath, edit(await Deno.readTextFile(configPath)));
    const member: FleetHost = { host, nodeId, daemon: host.startDaemon(), exited: false };
    member.daemon.child.status.then(() => member.exited = true);
    fleet.push(member);
  }
  await Promise.all(fleet.map((m) => m.daemon.waitFor(/stream connected/, 30_000)));
  return fleet;
}

/** Sets keys under `edge:` in a host config (appending them when absent). */
export function withEdge(settings: Record<string, number>): (config: string) => string {
  return (config) => {
    let out = config;
    for (const [key, value] of Object.entries(settings)) {
      const line = new RegExp(`^(  ${key}:).*$`, "m");
      out = line.test(out) ? out.replace(line, `$1 ${value}`) : out.replace(
        /^edge:\n/m,
        `edge:\n  ${key}: ${value}\n`,
      );
    }
    return out;
  };
}

export async function hostStatus(controller: ControllerProcess, nodeId: string, token: string) {
  const response = await controller.api(`/v1/edge/hosts/${nodeId}`, { token });
  return (await response.json()).status as string;
}

/** Waits until the controller lists every host as Connected; resolves with the time it took. */
export async function allConnected(
  controller: ControllerProcess,
  fleet: FleetHost[],
  timeoutMs: number,
): Promise<number> {
  const token = await controller.operatorToken("team-a", "readonly");
  const start = Date.now();
  await eventually(
    async () => {
      const statuses = await Promise.all(
        fleet.map((m) => hostStatus(controller, m.nodeId, token)),
      );
      return statuses.every((s) => s === "Connected") || undefined;
    },
    "every host Connected",
    timeoutMs,
  );
  return Date.now() - start;
}

/** No daemon exited, and none reached the last-resort guard or printed an uncaught error. */
export function assertAllAlive(fleet: FleetHost[]): void {
  for (const member of fleet) {
    assert.equal(member.exited, false, `daemon ${member.nodeId} exited:\n${member.daemon.stderr}`);
    assert.doesNotMatch(
      member.daemon.stderr,
      /internal error \(a bug|Uncaught/,
      member.daemon.stderr,
    );
  }
}

export async function stopFleet(fleet: FleetHost[]): Promise<void> {
  await Promise.all(fleet.map((m) => m.host.cleanup()));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
