// A host as the operator API shows it (REST and the MCP tools alike).
import {
  authView,
  type DaemonRecord,
  displayStatus,
  effectiveStatus,
  lastErrorView,
} from "../app/daemons.ts";
import type { Clock } from "../app/clock.ts";

export function hostView(
  record: DaemonRecord,
  deps: { clock: Clock; heartbeatIntervalSecs: number },
) {
  const now = deps.clock();
  return {
    node_id: record.node_id,
    name: record.name,
    tenant: record.tenant_id,
    status: displayStatus(effectiveStatus(record, deps.heartbeatIntervalSecs, now)),
    since: record.status_since.toISOString(),
    heartbeat_age: record.last_heartbeat_at
      ? Math.round((now.getTime() - record.last_heartbeat_at.getTime()) / 1000)
      : null,
    endpoint: record.endpoint,
    capabilities: record.capabilities,
    labels: record.labels,
    tags: record.tags,
    key_fingerprint: record.key_fingerprint,
    token_expires: record.token_expires_at?.toISOString() ?? null,
    reconnects: record.reconnects,
    // The controller's view of the node's credentials: state ok | token_expired | revoked.
    auth: authView(record, now),
    // As the daemon reported them in its last Hello: its last connection error and when it
    // happened (null when it had none), and the attempts that failed in a row before that Hello.
    last_error: lastErrorView(record),
    connect_failures: record.connect_failures,
  };
}
