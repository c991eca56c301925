// The host list as an operator browses it: filtered, sorted and paged in the database, so a page
// of 50 costs the same with 100 hosts or 15,000 and an open page refreshing every 2 s reads 50
// rows, not the fleet. The status shown is the effective one (daemons.ts effectiveStatus): a host
// recorded Connected whose heartbeats stopped for three intervals shows, filters and sorts as
// Disconnected.
import { AegisError } from "../../shared/errors.ts";
import type { Queryable } from "../store/db.ts";
import { type Capabilities, type DaemonStatus, displayStatus } from "./daemons.ts";

export const HOST_SORTS = [
  "name",
  "status",
  "heartbeat",
  "os",
  "version",
  "tenant",
  "created",
] as const;
export type HostSort = typeof HOST_SORTS[number];
export const HOST_STATUSES = ["connected", "disconnected", "revoked", "pending"] as const;

export interface HostFilter {
  status?: DaemonStatus;
  tag?: string;
  /** key=value, or just key (any value). */
  label?: string;
  /** Case-insensitive text in the name, node id, hostname, OS, tags or labels. */
  q?: string;
  sort: HostSort;
  desc: boolean;
  /** 1-based; past the last page shows the last page. */
  page: number;
  per: number;
}

export interface HostListRow {
  node_id: string;
  tenant_id: string;
  name: string;
  /** As displayed: Connected, Disconnected, Revoked, Pending. */
  status: string;
  last_heartbeat_at: Date | null;
  capabilities: Capabilities;
  labels: Record<string, string>;
  tags: string[];
}

export interface HostListing {
  rows: HostListRow[];
  /** Hosts matching the filter. */
  total: number;
  /** Hosts of these tenants, filter or not. */
  all: number;
  page: number;
  pages: number;
}

// Fixed expressions per sort key: the key comes from a closed list, never from the request.
const ORDER: Record<HostSort, string> = {
  name: "lower(coalesce(nullif(name, ''), capabilities->>'hostname', node_id))",
  status:
    "CASE shown WHEN 'connected' THEN 0 WHEN 'pending' THEN 1 WHEN 'disconnected' THEN 2 ELSE 3 END",
  heartbeat: "coalesce(last_heartbeat_at, 'epoch'::timestamptz)",
  os: "coalesce(capabilities->>'os', '') || '/' || coalesce(capabilities->>'arch', '')",
  version: "coalesce(capabilities->>'agent_version', '')",
  tenant: "tenant_id",
  created: "created_at",
};

// $1 tenants, $2 the heartbeat horizon (now - 3 intervals).
const HOSTS = `WITH h AS (
  SELECT node_id, tenant_id, name, last_heartbeat_at, capabilities, labels, tags, created_at,
         CASE WHEN status = 'connected' AND last_heartbeat_at IS NOT NULL
                   AND last_heartbeat_at < $2 THEN 'disconnected' ELSE status END AS shown
    FROM edge_daemons WHERE tenant_id = ANY($1::text[]))`;

// $3 status, $4 tag, $5 label key, $6 label value, $7 lower-cased text.
const MATCHES = `($3::text IS NULL OR shown = $3)
  AND ($4::text IS NULL OR $4 = ANY(tags))
  AND ($5::text IS NULL OR labels->>$5 IS NOT NULL)
  AND ($6::text IS NULL OR labels->>$5 = $6)
  AND ($7::text IS NULL OR strpos(lower(concat_ws(' ', name, node_id, capabilities->>'hostname',
        capabilities->>'os', array_to_string(tags, ' '),
        (SELECT string_agg(key || '=' || value, ' ') FROM jsonb_each_text(labels)))), $7) > 0)`;

export async function listHosts(
  db: Queryable,
  tenants: readonly string[],
  filter: HostFilter,
  heartbeatIntervalSecs: number,
  now: Date,
): Promise<HostListing> {
  const horizon = new Date(now.getTime() - 3 * heartbeatIntervalSecs * 1000);
  const [labelKey, labelValue] = splitLabel(filter.label);
  const params = [
    [...tenants],
    horizon,
    filter.status ?? null,
    filter.tag ?? null,
    labelKey ?? null,
    labelValue ?? null,
    filter.q?.toLowerCase() ?? null,
  ];
  const [counts] = await db.query<{ total: number; all: number }>(
    `${HOSTS} SELECT count(*) FILTER (WHERE ${MATCHES})::int AS total, count(*)::int AS all FROM h`,
    params,
  );
  const pages = Math.max(1, Math.ceil(counts.total / filter.per));
  const page = Math.min(Math.max(1, filter.page), pages);
  const direction = filter.desc ? "DESC" : "ASC";
  const rows = await db.query<Omit<HostListRow, "status"> & { shown: DaemonStatus }>(
    `${HOSTS} SELECT node_id, tenant_id, name, shown, last_heartbeat_at, capabilities, labels, tags
       FROM h WHERE ${MATCHES}
      ORDER BY ${ORDER[filter.sort]} ${direction}, node_id ${direction}
      LIMIT $8 OFFSET $9`,
    [...params, filter.per, (page - 1) * filter.per],
  );
  return {
    rows: rows.map(({ shown, ...row }) => ({ ...row, status: displayStatus(shown) })),
    total: counts.total,
    all: counts.all,
    page,
    pages,
  };
}

/** The tags and labels (key=value) in use on these tenants' hosts, for the filter pickers. */
export async function hostFacets(
  db: Queryable,
  tenants: readonly string[],
  limit = 500,
): Promise<{ tags: string[]; labels: string[] }> {
  const tags = await db.query<{ v: string }>(
    `SELECT DISTINCT t AS v FROM edge_daemons, unnest(tags) AS t
      WHERE tenant_id = ANY($1::text[]) ORDER BY 1 LIMIT $2`,
    [[...tenants], limit],
  );
  const labels = await db.query<{ v: string }>(
    `SELECT DISTINCT key || '=' || value AS v FROM edge_daemons, jsonb_each_text(labels)
      WHERE tenant_id = ANY($1::text[]) ORDER BY 1 LIMIT $2`,
    [[...tenants], limit],
  );
  return { tags: tags.map((r) => r.v), labels: labels.map((r) => r.v) };
}

function splitLabel(label: string | undefined): [string | undefined, string | undefined] {
  if (label === undefined) return [undefined, undefined];
  const eq = label.indexOf("=");
  return eq < 0 ? [label, undefined] : [label.slice(0, eq), label.slice(eq + 1)];
}

/** Listings computed at once per process; more wait their turn (PGlite runs in our process). */
export const LISTINGS_IN_FLIGHT = 2;
/** Listings waiting for a turn; past it a request is refused RATE_LIMITED instead of queued. */
export const LISTINGS_WAITING = 64;
/** How long a listing answers every tab that asks the same question (the live refresh is 2 s). */
export const LISTING_REUSE_MS = 1000;
const LISTINGS_REMEMBERED = 256;
const FACETS_REUSE_MS = 10_000;

/**
 * listHosts() for the console's many open tabs: one computation per distinct question per second
 * serves every tab asking it, and at most LISTINGS_IN_FLIGHT run at once, so a room of browsers
 * (or one script) searching 15,000 hosts cannot take the database from heartbeats and connects.
 */
export class HostListings {
  readonly #recent = new Map<string, { at: number; listing: Promise<HostListing> }>();
  readonly #facets = new Map<
    string,
    { at: number; facets: Promise<{ tags: string[]; labels: string[] }> }
  >();
  readonly #waiting: Array<() => void> = [];
  #running = 0;

  constructor(
    private readonly db: Queryable,
    private readonly heartbeatIntervalSecs: number,
    private readonly clock: () => Date,
  ) {}

  list(tenants: readonly string[], filter: HostFilter): Promise<HostListing> {
    const key = JSON.stringify([tenants, filter]);
    const now = Date.now();
    const recent = this.#recent.get(key);
    if (recent && now - recent.at < LISTING_REUSE_MS) return recent.listing;
    const listing = this.#inTurn(() =>
      listHosts(this.db, tenants, filter, this.heartbeatIntervalSecs, this.clock())
    );
    this.#recent.delete(key);
    this.#recent.set(key, { at: now, listing });
    // A failure is not remembered; the oldest answers go first once the map is full.
    listing.catch(() => this.#recent.get(key)?.listing === listing && this.#recent.delete(key));
    while (this.#recent.size > LISTINGS_REMEMBERED) {
      this.#recent.delete(this.#recent.keys().next().value!);
    }
    return listing;
  }

  /** The filter pickers' tags and labels: the same for every page of a tenant, kept 10 s. */
  facets(tenants: readonly string[]): Promise<{ tags: string[]; labels: string[] }> {
    const key = JSON.stringify(tenants);
    const now = Date.now();
    const recent = this.#facets.get(key);
    if (recent && now - recent.at < FACETS_REUSE_MS) return recent.facets;
    const facets = this.#inTurn(() => hostFacets(this.db, tenants));
    this.#facets.delete(key);
    this.#facets.set(key, { at: now, facets });
    facets.catch(() => this.#facets.get(key)?.facets === facets && this.#facets.delete(key));
    while (this.#facets.size > LISTINGS_REMEMBERED) {
      this.#facets.delete(this.#facets.keys().next().value!);
    }
    return facets;
  }

  async #inTurn<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= LISTINGS_IN_FLIGHT) {
      if (this.#waiting.length >= LISTINGS_WAITING) {
        throw new AegisError("RATE_LIMITED", "the console is answering too many host lists", {
          hint: "Try again in a moment.",
          details: { retry_after_ms: "1000" },
        });
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      // Hand the turn straight to the next waiter (the count stays), or give it back.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
