// The Edge Hosts list as the URL describes it: the tenant, filters (status, tag, label, free
// text), sort and page. Pure, so the page, its live refresh and the tests read a URL the same
// way; a value out of range falls back to the default instead of failing the page.
import {
  HOST_SORTS as SORTS,
  HOST_STATUSES as STATUSES,
  type HostFilter,
  type HostSort,
} from "../app/host_listing.ts";

export { SORTS, STATUSES };
export type Sort = HostSort;
export const PAGE_SIZES = [25, 50, 100, 200] as const;
const MAX_TEXT = 200;

export interface HostQuery extends HostFilter {
  tenant?: string;
}

const text = (value: string | undefined) => {
  const trimmed = value?.trim().slice(0, MAX_TEXT);
  return trimmed ? trimmed : undefined;
};

export function parseHostQuery(params: URLSearchParams): HostQuery {
  const status = params.get("status") ?? undefined;
  const sort = params.get("sort") ?? "name";
  const per = Number(params.get("per"));
  const page = Math.floor(Number(params.get("page")));
  return {
    tenant: text(params.get("tenant") ?? undefined),
    status: (STATUSES as readonly string[]).includes(status ?? "")
      ? status as HostQuery["status"]
      : undefined,
    tag: text(params.get("tag") ?? undefined),
    label: text(params.get("label") ?? undefined),
    q: text(params.get("q") ?? undefined),
    sort: (SORTS as readonly string[]).includes(sort) ? sort as Sort : "name",
    desc: params.get("dir") === "desc",
    page: Number.isFinite(page) && page >= 1 ? Math.min(page, 100_000) : 1,
    per: (PAGE_SIZES as readonly number[]).includes(per) ? per : 50,
  };
}

/** The query back as URL parameters, defaults left out; `change` overrides some of them. */
export function hostQueryString(query: HostQuery, change: Partial<HostQuery> = {}): string {
  const q = { ...query, ...change };
  const params = new URLSearchParams();
  if (q.tenant) params.set("tenant", q.tenant);
  if (q.status) params.set("status", q.status);
  if (q.tag) params.set("tag", q.tag);
  if (q.label) params.set("label", q.label);
  if (q.q) params.set("q", q.q);
  if (q.sort !== "name") params.set("sort", q.sort);
  if (q.desc) params.set("dir", "desc");
  if (q.page !== 1) params.set("page", String(q.page));
  if (q.per !== 50) params.set("per", String(q.per));
  const s = params.toString();
  return s ? `?${s}` : "";
}
