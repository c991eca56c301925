// The edge tools callers reach through MCP (seed 002's `aegis.*` names). What a tool is decides
// who may ever hold it: an operator-only tool is never in a consumer's security context (the
// config is refused if one lists it, and the lookup drops it besides), a tool that needs an edge
// role is shown only to identities holding it, and a tool that changes things is hidden from a
// readonly operator. Every path that runs a tool asks mayUse() first.
import { EDGE_ROLES, type EdgeRole } from "./identity.ts";

export interface EdgeToolTraits {
  /** Changes something (a host, a token, an execution); hidden from readonly operators. */
  writes: boolean;
  /** Never in a consumer context: fleet-wide or destructive operations. */
  operatorOnly: boolean;
  /** The edge role the identity must hold besides its context listing the tool. */
  role?: EdgeRole;
  /** Starts an execution that counts against the context's rate limits. */
  counted: boolean;
}

const read = { writes: false, operatorOnly: false, counted: false } as const;
const act = { writes: true, operatorOnly: false, counted: true } as const;
const fleet = {
  writes: true,
  operatorOnly: true,
  counted: true,
  role: EDGE_ROLES.fleetManage,
} as const;

export const EDGE_TOOLS = {
  "aegis.edge.hosts.list": read,
  "aegis.edge.hosts.describe": read,
  "aegis.edge.command.run": act,
  /** Any tool the host offers (echo, cmd.run...): the host's own policy decides. */
  "aegis.edge.tool.call": act,
  "aegis.edge.enrollment_token.issue": { ...act, role: EDGE_ROLES.enroll },
  "aegis.edge.hosts.revoke": { writes: true, operatorOnly: true, counted: true },
  "aegis.execution.start": act,
  "aegis.execution.tree": read,
  "aegis.execution.finish": { writes: true, operatorOnly: false, counted: false },
  "aegis.execution.cancel": { writes: true, operatorOnly: false, counted: false },
  "aegis.edge.fleet.exec": fleet,
  "aegis.edge.fleet.rotate_keys": fleet,
  "aegis.edge.fleet.refresh_tokens": fleet,
  "aegis.edge.fleet.stop": fleet,
  "aegis.edge.fleet.upgrade": fleet,
  "aegis.edge.fleet.results": { ...fleet, writes: false, counted: false },
} as const satisfies Record<string, EdgeToolTraits>;

export type EdgeToolName = keyof typeof EDGE_TOOLS;
export const EDGE_TOOL_NAMES = Object.keys(EDGE_TOOLS) as EdgeToolName[];

export function isEdgeTool(name: string): name is EdgeToolName {
  return Object.hasOwn(EDGE_TOOLS, name);
}

export function traitsOf(name: EdgeToolName): EdgeToolTraits {
  return EDGE_TOOLS[name];
}
