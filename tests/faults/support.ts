// What the network-fault scenarios share: a controller whose published endpoint is a fault
// proxy (so every daemon enrolled through it reaches the controller only through the proxy), a
// real tool call, the daemon's log times, and its open file descriptors.
import assert from "node:assert/strict";
import { type ControllerProcess, startControllerProcess } from "../support/controller.ts";
import { FaultProxy } from "../support/fault_proxy.ts";
import { AGENT_MAIN, Background, eventually } from "../support/processes.ts";
import { hostStatus } from "./daemons.ts";

export interface ProxiedController {
  proxy: FaultProxy;
  controller: ControllerProcess;
  stop(): Promise<void>;
}

/**
 * The proxy starts first so the controller can publish it as its endpoint (the enrollment
 * token's `cep`); enroll and daemon then go through it like any host behind a network path,
 * with no config rewritten behind the product's back. Operators' REST calls go direct.
 */
export async function proxiedController(): Promise<ProxiedController> {
  const proxy = await FaultProxy.start();
  try {
    const controller = await startControllerProcess({ publicEndpoint: proxy.endpoint });
    proxy.setTarget(controller.port);
    return {
      proxy,
      controller,
      async stop() {
        await proxy.stop();
        await controller.stop();
      },
    };
  } catch (error) {
    await proxy.stop();
    throw error;
  }
}

/** Runs `sh -c 'echo …'` on the host through the operator CLI; asserts it ran there. */
export async function assertCallWorks(controller: ControllerProcess, nodeId: string) {
  const home = await Deno.makeTempDir({ prefix: "aegis-operator-" });
  const marker = `alive-${crypto.randomUUID().slice(0, 8)}`;
  const call = new Background(
    AGENT_MAIN,
    ["edge", "exec", nodeId, "--timeout", "20s", "--", "sh", "-c", `echo ${marker}`],
    {
      HOME: home,
      AEGIS_ENDPOINT: controller.endpoint,
      AEGIS_TOKEN: await controller.operatorToken("team-a", "operator"),
    },
  );
  try {
    // Bounded: a call that hangs fails the test instead of hanging the suite.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      call.child.status,
      new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 45_000)),
    ]);
    clearTimeout(timer);
    await call.stop();
    assert.ok(status, `the call did not finish in 45 s:\n${call.stderr}`);
    assert.equal(status.code, 0, `the call failed:\n${call.stderr}`);
    assert.equal(call.stdout, `${marker}\n`);
  } finally {
    await call.stop();
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

/**
 * Waits until the controller shows the host with `status`; resolves with the ms since `since`
 * (taken by the caller before the change, so set-up such as minting `token` is not counted).
 */
export async function statusWithin(
  controller: ControllerProcess,
  nodeId: string,
  token: string,
  status: "Connected" | "Disconnected",
  since: number,
  timeoutMs: number,
): Promise<number> {
  return await eventually(
    async () =>
      await hostStatus(controller, nodeId, token) === status ? Date.now() - since : undefined,
    `the host to be ${status}`,
    timeoutMs,
  );
}

/**
 * When the daemon first logged a line matching `pattern` at or after `since` (epoch ms), by the
 * ISO time each of its log lines starts with; undefined when it has not.
 */
export function loggedAt(stderr: string, pattern: RegExp, since: number): number | undefined {
  for (const line of stderr.split("\n")) {
    const match = line.match(/^(\d{4}-\d\d-\d\dT\S+Z) (.*)$/);
    if (!match) continue;
    const at = Date.parse(match[1]);
    if (at >= since && pattern.test(match[2])) return at;
  }
  return undefined;
}

/** How many file descriptors the process holds now (Linux /proc). */
export function openFds(pid: number): number {
  let count = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) count++;
  return count;
}
