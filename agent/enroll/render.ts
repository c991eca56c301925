// How enrollment reports itself: the ✔ tree for people, one JSON document for machines.
import type { EnrollmentClaims } from "../../shared/tokens/claims.ts";
import type { Endpoint } from "../../shared/endpoint.ts";
import { displayPath } from "../state/paths.ts";
import type { Plan } from "./plan.ts";
import type { EnrollResult, Step } from "./apply.ts";
import { describeGrant, runsAnyCommand } from "./tools_grant.ts";

const WRITING_ACTIONS = /^(generate|generate_new|write|overwrite|merge|replace|install|create)/;

export function planJson(
  plan: Plan,
  claims: EnrollmentClaims,
  endpoint: Endpoint,
  dryRun: boolean,
) {
  return {
    dry_run: dryRun,
    endpoint: endpoint.display,
    tls: endpoint.tls,
    tenant_id: claims.tenant_id,
    name: claims.name,
    // Token-free enrollment has no token; the controller's rules pick the tenant.
    trusted: Boolean(plan.trusted),
    token_expires_at: plan.trusted ? null : new Date(claims.exp * 1000).toISOString(),
    artifacts: plan.artifacts,
    writes: plan.artifacts.filter((a) => WRITING_ACTIONS.test(a.action)).length,
    local_tools: plan.tools && {
      granted: plan.tools.granted,
      detected: plan.tools.detected,
      source: plan.tools.source,
      // True when the tenant's operators can run any command on this host.
      runs_any_command: runsAnyCommand(plan.tools.granted).length > 0,
      summary: describeGrant(plan.tools, claims.tenant_id),
      // False where a granted tool that reads files could read node.key and node.token.
      identity_hidden: plan.sandbox?.available ?? false,
      ...(plan.sandbox ? { sandbox: describeSandbox(plan.sandbox) } : {}),
    },
  };
}

export function renderPlan(
  plan: Plan,
  claims: EnrollmentClaims,
  endpoint: Endpoint,
  home: string,
): string {
  const summary = planJson(plan, claims, endpoint, true);
  const width = Math.max(...plan.artifacts.map((a) => displayPath(a.path, home).length));
  const lines = [
    "Bootstrap plan (dry run: nothing written, nothing sent)",
    `  endpoint  ${endpoint.display} (${endpoint.tls ? "TLS" : "plaintext"})`,
    `  tenant    ${claims.tenant_id}${claims.name ? `, host name "${claims.name}"` : ""}`,
    plan.trusted
      ? "  token     none: trusted enrollment (the source network is what the controller checks)"
      : `  token     expires ${summary.token_expires_at}`,
    ...(summary.local_tools ? [`  tools     ${summary.local_tools.summary}`] : []),
    ...(summary.local_tools?.sandbox ? [`  sandbox   ${summary.local_tools.sandbox}`] : []),
    ...plan.artifacts.map((a, i) => {
      const branch = i === plan.artifacts.length - 1 ? "└" : "├";
      const path = displayPath(a.path, home).padEnd(width);
      return `  ${branch} ${path}  ${a.action}${a.note ? `  (${a.note})` : ""}`;
    }),
    `${summary.writes} artifact(s) would be written or changed.`,
  ];
  return lines.join("\n") + "\n";
}

export function renderResult(result: EnrollResult, home: string, plan?: Plan): string {
  const lines = ["✔ Bootstrap plan complete", ...tree(result.steps, home)];
  if (plan?.tools) {
    const any = runsAnyCommand(plan.tools.granted).length > 0;
    lines.push(`${any ? "!" : "✔"} Tools: ${describeGrant(plan.tools, result.tenantId)}`);
  }
  if (plan?.sandbox) {
    lines.push(`${plan.sandbox.available ? "✔" : "!"} Sandbox: ${describeSandbox(plan.sandbox)}`);
  }
  lines.push(
    result.reused ? `✔ Reusing node ${result.nodeId}` : `✔ Attested as node ${result.nodeId}`,
    `✔ Bound to tenant ${result.tenantId}`,
  );
  lines.push(
    result.streamConnected
      ? `✔ Stream connected to ${result.endpoint.display}`
      : `✖ Stream to ${result.endpoint.display} did not open (the daemon keeps retrying)`,
  );
  for (const line of result.advice) lines.push(`  ${line}`);
  return lines.join("\n") + "\n";
}

export function resultJson(result: EnrollResult, home: string) {
  return {
    node_id: result.nodeId,
    tenant_id: result.tenantId,
    name: result.nodeName,
    endpoint: result.endpoint.display,
    token_expires: result.tokenExpiresAt.toISOString(),
    reused: result.reused,
    stream_connected: result.streamConnected,
    service_started: result.serviceStarted,
    steps: result.steps.map((s) => ({ ...s, path: displayPath(s.path, home) })),
    advice: result.advice,
  };
}

function tree(steps: Step[], home: string): string[] {
  return steps.map((step, i) => {
    const branch = i === steps.length - 1 ? "└" : "├";
    const note = step.note ? ` (${step.note})` : "";
    return `  ${branch} ${step.verb.padEnd(8)} ${displayPath(step.path, home)}${note}`;
  });
}

/** Whether the tools granted can reach the host's own identity: said plainly at enrollment. */
export function describeSandbox(sandbox: { available: boolean; detail: string }): string {
  return sandbox.available
    ? "calls run with ~/.aegis/edge hidden (bubblewrap)"
    : `unavailable (${sandbox.detail}): any granted tool that reads files can read node.key ` +
      `and node.token; install bubblewrap, or set edge.sandbox: required to refuse calls instead`;
}
