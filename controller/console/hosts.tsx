// Edge Hosts: every host of the tenants the operator sees, filtered, sorted and paged as the URL
// says. The table refreshes itself every 2 s; the server answers 204 (nothing to swap) while the
// rows' fingerprint is unchanged, so an open page costs a few bytes and never steals focus.
import type { Hono } from "hono";
import { createHash } from "node:crypto";
import { tenantsOf } from "../app/operators.ts";
import type { ConsoleDeps } from "./deps.ts";
import type { ConsoleEnv } from "./session.ts";
import { Page, StatusBadge } from "./layout.tsx";
import { Age, Chips, labelPairs, Select } from "./components.tsx";
import {
  type HostQuery,
  hostQueryString,
  PAGE_SIZES,
  parseHostQuery,
  type Sort,
  STATUSES,
} from "./host_query.ts";
import type { HostListing } from "../app/host_listing.ts";

export const HOSTS_REFRESH = "every 2s";

export function hostsPages(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.get("/hosts", async (c) => {
    const started = performance.now();
    const operator = c.get("operator");
    const params = new URL(c.req.url).searchParams;
    const query = parseHostQuery(params);
    const tenants = tenantsOf(operator);
    const shown = query.tenant && tenants.includes(query.tenant) ? [query.tenant] : tenants;
    const { tenant: _tenant, ...filter } = query;
    const page = await deps.hostListings.list(shown, filter);
    const fingerprint = fingerprintOf(page, query);
    // What the server spent on this answer (queries and rendering), for a browser's devtools
    // and the console benchmark.
    const timing = () => `app;dur=${(performance.now() - started).toFixed(2)}`;
    const refresh = c.req.header("hx-request") && c.req.header("hx-trigger") === "hosts";
    if (refresh && params.get("v") === fingerprint) {
      return c.body(null, 204, { "server-timing": timing() });
    }
    c.header("cache-control", "no-store");
    let html: string;
    if (c.req.header("hx-request") && c.req.header("hx-target") === "hosts") {
      html = String(<HostsTable page={page} query={query} fingerprint={fingerprint} />);
    } else {
      const facets = await deps.hostListings.facets(shown);
      html = String(
        <Page title="Edge Hosts" section="hosts" operator={operator} csrf={c.get("csrf")}>
          <Filters query={query} facets={facets} tenants={tenants} />
          <HostsTable page={page} query={query} fingerprint={fingerprint} />
        </Page>,
      );
    }
    c.header("server-timing", timing());
    return c.html(html);
  });
}

/** What the table shows, minus the times that move by themselves (rendered as ages by the browser). */
function fingerprintOf(page: HostListing, query: HostQuery): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify([page.total, page.all, page.page, page.pages, query]));
  for (const row of page.rows) {
    hash.update(JSON.stringify([
      row.node_id,
      row.status,
      row.name,
      row.tags,
      row.labels,
      row.capabilities.agent_version,
      row.capabilities.os,
      row.capabilities.arch,
    ]));
  }
  return hash.digest("hex").slice(0, 16);
}

function Filters(
  props: { query: HostQuery; facets: { tags: string[]; labels: string[] }; tenants: string[] },
) {
  const { query, facets, tenants } = props;
  return (
    <form
      class="card row"
      method="get"
      action="/console/hosts"
      role="search"
      aria-label="Filter hosts"
      hx-get="/console/hosts"
      hx-target="#hosts"
      hx-swap="outerHTML"
      hx-push-url="true"
      hx-trigger="input changed delay:300ms from:input[type=search], change"
    >
      <label>
        Tenant
        <Select
          name="tenant"
          value={query.tenant}
          options={tenants}
          any={`All my tenants (${tenants.length})`}
        />
      </label>
      <label>
        Status
        <Select
          name="status"
          value={query.status}
          options={STATUSES.map((s) => [s, s[0].toUpperCase() + s.slice(1)] as const)}
          any="Any"
        />
      </label>
      <label>
        Tag
        <Select name="tag" value={query.tag} options={facets.tags} any="Any" />
      </label>
      <label>
        Label
        <Select name="label" value={query.label} options={facets.labels} any="Any" />
      </label>
      <label>
        Search
        <input
          type="search"
          name="q"
          value={query.q ?? ""}
          placeholder="name, node id, hostname, tag"
          maxlength={200}
        />
      </label>
      <label>
        Per page
        <Select name="per" value={query.per} options={PAGE_SIZES.map(String)} />
      </label>
      {query.sort !== "name" ? <input type="hidden" name="sort" value={query.sort} /> : null}
      {query.desc ? <input type="hidden" name="dir" value="desc" /> : null}
      <button type="submit" class="secondary">Apply</button>
    </form>
  );
}

const COLUMNS: { label: string; sort?: Sort }[] = [
  { label: "Status", sort: "status" },
  { label: "Name", sort: "name" },
  { label: "Node id" },
  { label: "Tenant", sort: "tenant" },
  { label: "OS/arch", sort: "os" },
  { label: "Version", sort: "version" },
  { label: "Last heartbeat", sort: "heartbeat" },
  { label: "Tags" },
  { label: "Labels" },
];

export function HostsTable(
  props: { page: HostListing; query: HostQuery; fingerprint: string },
) {
  const { page, query } = props;
  const self = `/console/hosts${hostQueryString(query)}`;
  const poll = `${self}${self.includes("?") ? "&" : "?"}v=${props.fingerprint}`;
  const link = (change: Partial<HostQuery>) => `/console/hosts${hostQueryString(query, change)}`;
  return (
    <section
      id="hosts"
      aria-label="Hosts"
      hx-get={poll}
      hx-trigger={HOSTS_REFRESH}
      hx-target="this"
      hx-swap="outerHTML"
      data-fingerprint={props.fingerprint}
    >
      <p class="muted" aria-live="polite">
        {page.total === page.all
          ? `${page.all} host${page.all === 1 ? "" : "s"}`
          : `${page.total} of ${page.all} hosts match`}
      </p>
      {page.all === 0
        ? (
          <div class="card">
            No hosts yet. <a href="/console/hosts/new">Add Edge Host</a>{" "}
            issues a token and shows the command that enrolls one.
          </div>
        )
        : (
          <table class="responsive">
            <thead>
              <tr>
                {COLUMNS.map((col) => {
                  if (!col.sort) return <th scope="col">{col.label}</th>;
                  const active = query.sort === col.sort;
                  const sort = active ? (query.desc ? "descending" : "ascending") : undefined;
                  return (
                    <th scope="col" aria-sort={sort}>
                      <a href={link({ sort: col.sort, desc: active && !query.desc, page: 1 })}>
                        {col.label}
                        {active ? (query.desc ? " ▼" : " ▲") : ""}
                      </a>
                    </th>
                  );
                })}
              </tr>
            </thead>
            <tbody>
              {page.rows.map((record) => (
                <tr data-node-id={record.node_id}>
                  <td data-label="Status">
                    <StatusBadge status={record.status} />
                  </td>
                  <td data-label="Name">
                    <a href={`/console/hosts/${encodeURIComponent(record.node_id)}`}>
                      {record.name || record.capabilities.hostname || record.node_id}
                    </a>
                  </td>
                  <td data-label="Node id" class="mono">{record.node_id}</td>
                  <td data-label="Tenant">{record.tenant_id}</td>
                  <td data-label="OS/arch">
                    {record.capabilities.os
                      ? `${record.capabilities.os}/${record.capabilities.arch ?? "?"}`
                      : "—"}
                  </td>
                  <td data-label="Version">{record.capabilities.agent_version ?? "—"}</td>
                  <td data-label="Last heartbeat">
                    <Age at={record.last_heartbeat_at} />
                  </td>
                  <td data-label="Tags">
                    <Chips items={record.tags} />
                  </td>
                  <td data-label="Labels">
                    <Chips items={labelPairs(record.labels)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      {page.pages > 1
        ? (
          <nav class="pager" aria-label="Pages">
            {page.page > 1
              ? <a href={link({ page: page.page - 1 })} rel="prev">← Previous</a>
              : null}
            <span>
              Page {page.page} of {page.pages}
            </span>
            {page.page < page.pages
              ? <a href={link({ page: page.page + 1 })} rel="next">Next →</a>
              : null}
          </nav>
        )
        : null}
    </section>
  );
}
