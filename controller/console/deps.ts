// What the console's pages call: the same domain services the REST API calls.
import type { ConsoleSessions } from "../app/console_sessions.ts";
import type { DaemonRepository } from "../app/daemons.ts";
import type { HostListings } from "../app/host_listing.ts";
import type { EnrollmentService } from "../app/enrollment.ts";
import type { RevocationService } from "../app/revocation.ts";
import type { ToolCallService } from "../app/tool_calls.ts";
import type { FleetDispatcher } from "../app/fleet/dispatcher.ts";
import type { EdgeActions } from "../app/edge_actions.ts";
import type { Clock } from "../app/clock.ts";
import type { OidcLogin } from "../app/oidc_login.ts";
import type { Queryable } from "../store/db.ts";

export interface ConsoleDeps {
  sessions: ConsoleSessions;
  daemons: DaemonRepository;
  /** The Edge Hosts list: shared between tabs for a second, a bounded number at once. */
  hostListings: HostListings;
  enrollment: EnrollmentService;
  calls: ToolCallService;
  revocation: RevocationService;
  fleet: FleetDispatcher;
  /** Commands, fleet operations, enrollment tokens and revocations, as executions (audited). */
  actions: EdgeActions;
  db: Queryable;
  clock: Clock;
  heartbeatIntervalSecs: number;
  /** Enrollment tokens' lifetime when the page does not ask for another. */
  enrollmentTtlSecs: number;
  log: (message: string) => void;
  /** Whether a TCP peer is one of cluster.ingress.trusted_proxies (absent: none is). */
  viaTrustedProxy?: (peer: string | undefined) => boolean;
  /** "Sign in with <provider>" through the external issuers with an `oidc` block, if any. */
  oidc?: OidcLogin;
}
