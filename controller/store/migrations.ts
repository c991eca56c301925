// Schema migrations: an append-only list. Never edit a shipped migration; add the next version.
// Several relays may start at once against one PostgreSQL, so every step runs under one
// transaction-scoped advisory lock and re-checks whether a peer already applied it. (PGlite has
// a single connection; the lock is then free and harmless.)
import { AegisError } from "../../shared/errors.ts";
import type { Queryable } from "./db.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** A transaction handle that can also run a multi-statement script without parameters. */
export interface ScriptTx extends Queryable {
  exec(script: string): Promise<void>;
}

/** What the migrator needs from an adapter; both adapters provide it next to `Db`. */
export interface MigratableDb extends Queryable {
  transaction<T>(fn: (tx: ScriptTx) => Promise<T>): Promise<T>;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sql: `
CREATE TABLE edge_daemons (
  node_id text PRIMARY KEY,
  tenant_id text NOT NULL,
  name text NOT NULL,
  public_key text NOT NULL,            -- base64 raw Ed25519
  key_fingerprint text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending','connected','disconnected','revoked')),
  status_since timestamptz NOT NULL,
  last_heartbeat_at timestamptz,
  capabilities jsonb NOT NULL DEFAULT '{}'::jsonb,
  labels jsonb NOT NULL DEFAULT '{}'::jsonb,
  tags text[] NOT NULL DEFAULT '{}',
  endpoint text NOT NULL DEFAULT '',
  relay_id text,
  remote_addr text,
  reconnects integer NOT NULL DEFAULT 0,
  token_jti text,
  token_expires_at timestamptz,
  enrollment_jti text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX edge_daemons_tenant ON edge_daemons (tenant_id);
CREATE TABLE enrollment_tokens (
  jti text PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL, issued_by text NOT NULL,
  expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  redeemed_at timestamptz, node_id text, redeemed_public_key text
);
CREATE TABLE attest_challenges (
  challenge_id text PRIMARY KEY, public_key text NOT NULL, nonce text NOT NULL,
  hostname text NOT NULL DEFAULT '', os text NOT NULL DEFAULT '', arch text NOT NULL DEFAULT '',
  remote_addr text NOT NULL DEFAULT '', expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE revoked_tokens (
  jti text PRIMARY KEY, node_id text NOT NULL, reason text NOT NULL,
  expires_at timestamptz NOT NULL, revoked_at timestamptz NOT NULL DEFAULT now()
);
-- Sweepers delete expired rows by expiry; without these they scan whole tables.
CREATE INDEX attest_challenges_expires ON attest_challenges (expires_at);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
CREATE INDEX enrollment_tokens_expires ON enrollment_tokens (expires_at);
`,
  },
  {
    version: 2,
    name: "tool call history",
    sql: `
CREATE TABLE tool_calls (
  call_id text PRIMARY KEY,
  node_id text NOT NULL,
  tenant_id text NOT NULL,
  tool text NOT NULL,
  summary text NOT NULL,
  arguments jsonb NOT NULL DEFAULT '{}'::jsonb,
  requested_by text NOT NULL,
  relay_id text,
  status text NOT NULL CHECK (status IN
    ('running','ok','failed','timed_out','refused','offline','cancelled','interrupted','disconnected')),
  exit_code integer,
  error text,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  duration_ms integer,
  output_bytes integer NOT NULL DEFAULT 0,
  truncated boolean NOT NULL DEFAULT false
);
CREATE INDEX tool_calls_node ON tool_calls (node_id, started_at DESC);
CREATE INDEX tool_calls_running ON tool_calls (relay_id) WHERE status = 'running';
`,
  },
  {
    version: 3,
    name: "key rotation overlap",
    sql: `
ALTER TABLE edge_daemons ADD COLUMN previous_public_key text;
ALTER TABLE edge_daemons ADD COLUMN previous_key_fingerprint text;
ALTER TABLE edge_daemons ADD COLUMN rotated_at timestamptz;
ALTER TABLE edge_daemons ADD COLUMN rotations integer NOT NULL DEFAULT 0;
-- Nonces of requests that change state (rotations), so a captured one cannot be sent again.
CREATE TABLE used_nonces (
  nonce text PRIMARY KEY,
  node_id text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX used_nonces_expires ON used_nonces (expires_at);
`,
  },
  {
    version: 4,
    name: "fleet operations",
    sql: `
CREATE TABLE fleet_operations (
  op_id text PRIMARY KEY,
  tenant_id text NOT NULL,
  operation text NOT NULL,
  target text NOT NULL,
  mode text NOT NULL,
  on_error text NOT NULL,
  deadline_secs integer NOT NULL,
  requested_by text NOT NULL,
  relay_id text,
  status text NOT NULL CHECK (status IN ('running','done','stopped','interrupted')),
  total integer NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz
);
CREATE INDEX fleet_operations_tenant ON fleet_operations (tenant_id, started_at DESC);
CREATE TABLE fleet_results (
  op_id text NOT NULL REFERENCES fleet_operations (op_id) ON DELETE CASCADE,
  node_id text NOT NULL,
  name text NOT NULL,
  wave integer NOT NULL,
  status text NOT NULL CHECK (status IN ('ok','failed','timed_out','offline','skipped')),
  detail text,
  exit_code integer,
  finished_at timestamptz NOT NULL,
  PRIMARY KEY (op_id, node_id)
);
`,
  },
  {
    version: 5,
    name: "relay peering and output limits",
    sql: `
CREATE TABLE relays (
  relay_id text PRIMARY KEY,
  peer_endpoint text NOT NULL,
  last_seen_at timestamptz NOT NULL
);
ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_status_check;
ALTER TABLE tool_calls ADD CONSTRAINT tool_calls_status_check CHECK (status IN
  ('running','ok','failed','timed_out','refused','offline','cancelled','interrupted','disconnected',
   'truncated','cut_off'));
`,
  },
  {
    version: 6,
    name: "one live node per key",
    sql: `
-- One key is one live node. Keys enrolled twice before this rule keep their newest node.
UPDATE edge_daemons d SET status = 'revoked', status_since = now()
 WHERE d.status <> 'revoked' AND EXISTS (
   SELECT 1 FROM edge_daemons o
    WHERE o.public_key = d.public_key AND o.status <> 'revoked' AND o.node_id <> d.node_id
      AND (o.created_at, o.node_id) > (d.created_at, d.node_id));
CREATE UNIQUE INDEX edge_daemons_live_key ON edge_daemons (public_key) WHERE status <> 'revoked';
`,
  },
  {
    version: 7,
    name: "daemon connection reports",
    sql: `
-- What the daemon reported in its last Hello: its last connection error (bounded to 1024
-- characters by the controller), when it happened, and the attempts that failed before.
ALTER TABLE edge_daemons ADD COLUMN last_error text;
ALTER TABLE edge_daemons ADD COLUMN last_error_at timestamptz;
ALTER TABLE edge_daemons ADD COLUMN connect_failures integer NOT NULL DEFAULT 0;
`,
  },
  {
    version: 8,
    name: "approved enrollment patterns and token hostname patterns",
    sql: `
-- Operator-approved trusted-enrollment rules (aegis edge approved add): a host whose hostname
-- matches pattern and whose source address is in one of cidrs enrolls into tenant_id tokenless.
CREATE TABLE approved_patterns (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  pattern text NOT NULL,
  cidrs text[] NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approved_patterns_tenant ON approved_patterns (tenant_id);
-- The hostname glob an enrollment token is bound to (also signed into the token as hnp).
ALTER TABLE enrollment_tokens ADD COLUMN hostname_pattern text;
`,
  },
  {
    version: 9,
    name: "web console sessions and spent login links",
    sql: `
-- A signed-in browser: the cookie holds a random id, the table only its SHA-256, so a read of
-- the database yields no usable session. claims are the operator claims it acts with.
CREATE TABLE console_sessions (
  id_hash text PRIMARY KEY,
  identity text NOT NULL,                -- JSON [iss, sub, tenant_id]: sessions are bounded per identity
  claims jsonb NOT NULL,
  csrf text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_identity ON console_sessions (identity, created_at);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
-- One-time login links (aegis-controller token create --login): a link's id once it was used,
-- kept until the link would have expired anyway.
CREATE TABLE console_login_links (
  jti text PRIMARY KEY,
  used_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
`,
  },
  {
    version: 10,
    name: "edge host connection log",
    sql: `
-- Each stream a node held: written in the statement that marks it connected, closed in the
-- statement that marks it disconnected (batched), at most the newest 50 kept per node (the
-- controller prunes the older ones when it adds one). disconnected_at stays NULL while the stream
-- lives, and on a row whose end was never recorded (its relay died and has not restarted).
CREATE TABLE edge_connections (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  node_id text NOT NULL,
  connected_at timestamptz NOT NULL,
  disconnected_at timestamptz,
  relay_id text NOT NULL,
  remote_addr text,
  agent_version text
);
CREATE INDEX edge_connections_node ON edge_connections (node_id, connected_at DESC, id DESC);
-- Open rows only (about one per node): what a batch of disconnects closes, found without
-- walking each node's 50 rows; releaseRelay reads it whole, once per relay start and stop.
CREATE INDEX edge_connections_open ON edge_connections (node_id, relay_id)
  WHERE disconnected_at IS NULL;
`,
  },
  {
    version: 11,
    name: "fleet operations stopped on request",
    sql: `
-- An operator asked a running operation to start no more hosts (the relay running it reads this
-- as results arrive; hosts already running finish).
ALTER TABLE fleet_operations ADD COLUMN stop_requested_by text;
ALTER TABLE fleet_operations ADD COLUMN stop_requested_at timestamptz;
`,
  },
  {
    version: 12,
    name: "executions",
    sql: `
-- One row per unit of work a caller started: a task (a conversation's root), a tool call, a fleet
-- operation, and each host a fleet operation touches. parent_id links a child to the execution it
-- runs under; root_id names the tree's root (its own id for a root), so a cascade cancel is one
-- UPDATE over the tree. context is the security context the execution runs under: never broader
-- than its parent's (the ceiling rule).
CREATE TABLE executions (
  id text PRIMARY KEY,
  root_id text NOT NULL,
  parent_id text REFERENCES executions (id) ON DELETE CASCADE,
  tenant_id text NOT NULL,
  -- A root started within a conversation: SHA-256 of (issuer, subject, the client's session id).
  session_key text,
  kind text NOT NULL,
  title text NOT NULL,
  context text NOT NULL,
  identity_kind text NOT NULL,
  issuer text NOT NULL,
  subject text NOT NULL,
  -- Counts against the context's executions per minute and per day.
  counted boolean NOT NULL,
  status text NOT NULL,
  detail text,
  -- The call id, fleet operation id or node id the execution stands for.
  ref text,
  relay_id text NOT NULL,
  deadline_at timestamptz,
  created_at timestamptz NOT NULL,
  ended_at timestamptz,
  cancel_requested_by text,
  cancel_requested_at timestamptz
);
-- One active top-level task per conversation, whichever of the caller's tenants it acts on,
-- across every relay. (A lone tool call in a conversation is a root too, named by session_key so
-- that ending the conversation ends it.)
CREATE UNIQUE INDEX executions_one_active_task ON executions (session_key)
  WHERE parent_id IS NULL AND status = 'running' AND kind = 'task' AND session_key IS NOT NULL;
CREATE INDEX executions_session ON executions (session_key) WHERE status = 'running';
CREATE INDEX executions_tree ON executions (root_id);
CREATE INDEX executions_parent ON executions (parent_id);
CREATE INDEX executions_rate ON executions (tenant_id, subject, created_at) WHERE counted;
CREATE INDEX executions_running ON executions (tenant_id, subject) WHERE status = 'running';
CREATE INDEX executions_roots ON executions (tenant_id, created_at DESC) WHERE parent_id IS NULL;
CREATE INDEX executions_deadline ON executions (deadline_at) WHERE status = 'running';
-- Ended trees, oldest first, for pruning.
CREATE INDEX executions_ended ON executions (ended_at) WHERE parent_id IS NULL AND status <> 'running';
`,
  },
  {
    version: 13,
    name: "audit log",
    sql: `
-- The audit log: one hash chain per tenant (shared/audit_chain.ts). seq numbers a tenant's records
-- 1, 2, 3, ... with no gaps; hash is SHA-256 over prev_hash and the record's canonical form, so a
-- record edited or deleted in place is detected by whoever verifies an export. detail is JSON
-- text (not jsonb): it is hashed exactly as stored, and jsonb would normalise it.
CREATE TABLE audit_log (
  tenant_id text NOT NULL,
  seq bigint NOT NULL,
  recorded_at timestamptz NOT NULL,
  retain_until timestamptz NOT NULL,
  actor_kind text NOT NULL,
  actor_issuer text NOT NULL,
  actor_subject text NOT NULL,
  actor_context text NOT NULL,
  action text NOT NULL,
  target text NOT NULL,
  outcome text NOT NULL,
  detail text,
  execution_id text,
  relay_id text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_retention ON audit_log (retain_until);
CREATE INDEX audit_log_since ON audit_log (tenant_id, recorded_at);
-- Each tenant's chain: its newest record (seq, hash), which a deleted newest record cannot take
-- with it, and the last record pruned for retention, which the oldest one left chains to. Writers
-- lock this row (FOR UPDATE) while they append, so relays sharing a database keep one chain.
CREATE TABLE audit_heads (
  tenant_id text PRIMARY KEY,
  seq bigint NOT NULL,
  hash text NOT NULL,
  pruned_through_seq bigint NOT NULL,
  pruned_through_hash text NOT NULL
);
`,
  },
];

// Arbitrary but fixed: every aegis binary must agree on it. Fits in int4 to dodge int8 params.
const MIGRATION_LOCK = 0x4ae615;

/** Applies pending migrations in order, each in its own transaction; returns versions applied. */
export async function migrate(
  db: MigratableDb,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  assertOrdered(migrations);
  await db.transaction(async (tx) => {
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type; the lock prevents it.
    await lock(tx);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  });
  const done = new Set(
    (await db.query<{ version: number }>("SELECT version FROM schema_migrations"))
      .map((row) => row.version),
  );
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    const ran = await db.transaction(async (tx) => {
      await lock(tx);
      const already = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [
        migration.version,
      ]);
      if (already.length) return false; // a peer won the race while we waited for the lock
      await tx.exec(migration.sql);
      await tx.query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
        [migration.version, migration.name],
      );
      return true;
    });
    if (ran) applied.push(migration.version);
  }
  return applied;
}

async function lock(tx: Queryable): Promise<void> {
  // ::text because void results differ between drivers and nobody needs them.
  await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})::text`);
}

function assertOrdered(migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version <= migrations[i - 1].version) {
      throw new AegisError("INTERNAL", `migration ${migrations[i].version} is out of order`);
    }
  }
}
