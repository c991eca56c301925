// Helpers for the host-policy tests: an enrolled host whose config the test sets, and cmd.run
// calls through the controller's REST exec route, read back as one result.
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import type { ControllerProcess } from "../support/controller.ts";
import { enrollNewHost, type Host } from "../support/host.ts";

export interface ExecResult {
  refused?: { code: string; message: string };
  exitCode?: number;
  stdout: string;
  stderr: string;
}

/** Enrolls with no tool flags (works on any version) and returns the node id. */
export async function enrolledHost(
  controller: ControllerProcess,
  extra: string[] = [],
): Promise<{ host: Host; nodeId: string; stdout: string }> {
  return await enrollNewHost(controller, { localTools: null, extra });
}

export function configPath(host: Host): string {
  return `${host.home}/.aegis/edge/aegis-config.yaml`;
}

export async function readConfig(host: Host): Promise<Record<string, unknown>> {
  return parse(await Deno.readTextFile(configPath(host))) as Record<string, unknown>;
}

/** Overwrites top-level keys of the host's config, keeping the rest. */
export async function setConfig(host: Host, values: Record<string, unknown>): Promise<void> {
  await Deno.writeTextFile(configPath(host), stringify({ ...await readConfig(host), ...values }));
}

export async function exec(
  controller: ControllerProcess,
  nodeId: string,
  token: string,
  body: Record<string, unknown>,
): Promise<ExecResult> {
  const response = await controller.api(`/v1/edge/hosts/${nodeId}/exec`, {
    method: "POST",
    token,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ timeout_secs: 30, ...body }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  const result: ExecResult = { stdout: "", stderr: "" };
  const decode = (b64: string) =>
    new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  for (const line of (await response.text()).split("\n").filter(Boolean)) {
    const event = JSON.parse(line);
    if (event.type === "stdout") result.stdout += decode(event.data);
    else if (event.type === "stderr") result.stderr += decode(event.data);
    else if (event.type === "refused") {
      result.refused = { code: event.code, message: event.message };
    } else if (event.type === "exit") result.exitCode = event.exit_code;
    else if (event.type === "error") throw new Error(`exec error: ${line}`);
  }
  return result;
}
