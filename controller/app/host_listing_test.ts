import assert from "node:assert/strict";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { AegisError } from "../../shared/errors.ts";
import {
  hostFacets,
  type HostFilter,
  HostListings,
  listHosts,
  LISTINGS_IN_FLIGHT,
  LISTINGS_WAITING,
} from "./host_listing.ts";

const NOW = new Date("2026-11-24T12:00:00Z");
const BASE: HostFilter = { sort: "name", desc: false, page: 1, per: 50 };

Deno.test(`[${TEST_DB_KIND}] listHosts() filters, sorts and pages 1,000 hosts in the database`, async () => {
  const store = await testDatabase();
  const db = await store.open();
  try {
    // host-i: every 3rd recorded connected with a fresh heartbeat, every 7th connected but silent
    // for 5 minutes (shows Disconnected), every 10th tagged db, every 4th in region eu.
    await db.query(
      `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
          status_since, last_heartbeat_at, capabilities, labels, tags, created_at)
       SELECT 'n-' || lpad(i::text, 4, '0'), CASE WHEN i % 2 = 0 THEN 'team-a' ELSE 'team-b' END,
              'host-' || i, 'k' || i, 'SHA256:x',
              CASE WHEN i % 3 = 0 OR i % 7 = 0 THEN 'connected' ELSE 'disconnected' END,
              $1::timestamptz, CASE WHEN i % 7 = 0 THEN $1::timestamptz - interval '5 minutes' ELSE $1::timestamptz - i * interval '10 ms' END,
              jsonb_build_object('os', CASE WHEN i % 2 = 0 THEN 'linux' ELSE 'darwin' END,
                                 'hostname', 'box' || i || '.example'),
              jsonb_build_object('region', CASE WHEN i % 4 = 0 THEN 'eu' ELSE 'us' END),
              CASE WHEN i % 10 = 0 THEN ARRAY['db'] ELSE ARRAY[]::text[] END,
              $1::timestamptz + i * interval '1 second'
         FROM generate_series(1, 1000) AS i`,
      [NOW],
    );
    const both = ["team-a", "team-b"];
    const list = (filter: Partial<HostFilter>, tenants = both) =>
      listHosts(db, tenants, { ...BASE, ...filter }, 30, NOW);

    const all = await list({});
    assert.equal(all.all, 1000);
    assert.equal(all.total, 1000);
    assert.equal(all.pages, 20);
    assert.deepEqual(all.rows.slice(0, 3).map((r) => r.name), ["host-1", "host-10", "host-100"]);

    const connected = await list({ status: "connected", per: 200 });
    const expected = Array.from({ length: 1000 }, (_, k) => k + 1)
      .filter((i) => i % 3 === 0 && i % 7 !== 0).length;
    assert.equal(connected.total, expected, "silent hosts count as disconnected");
    assert.ok(connected.rows.every((r) => r.status === "Connected"));
    const silent = await list({ q: "host-7", status: "disconnected", per: 200 });
    assert.ok(silent.rows.some((r) => r.name === "host-7"), "host-7 is silent, so Disconnected");

    const tagged = await list({ tag: "db", label: "region=eu" });
    assert.equal(tagged.total, 50);
    assert.ok(tagged.rows.every((r) => r.tags.includes("db") && r.labels.region === "eu"));
    assert.equal((await list({ label: "region" })).total, 1000);
    assert.equal((await list({ label: "zone" })).total, 0);

    const text = await list({ q: "BOX99" });
    assert.deepEqual(
      text.rows.map((r) => r.name).sort(),
      [
        "host-99",
        ...Array.from({ length: 10 }, (_, k) => `host-${990 + k}`),
      ].sort(),
    );
    assert.equal((await list({ q: "region=eu" })).total, 250);

    const tenantA = await list({}, ["team-a"]);
    assert.equal(tenantA.all, 500);
    assert.ok(tenantA.rows.every((r) => r.tenant_id === "team-a"));

    const newest = await list({ sort: "created", desc: true });
    assert.equal(newest.rows[0].name, "host-1000");
    const past = await list({ sort: "heartbeat", page: 999 });
    assert.equal(past.page, 20, "a page past the end shows the last one");
    assert.equal(past.rows.length, 50);
    const byStatus = await list({ sort: "status", per: 200 });
    assert.equal(byStatus.rows[0].status, "Connected");

    // Nothing a request says reaches SQL as text: quotes and wildcards are just characters.
    assert.equal((await list({ q: "%' OR 1=1 --" })).total, 0);
    assert.equal((await list({ tag: "db' OR 'x'='x" })).total, 0);

    const facets = await hostFacets(db, both);
    assert.deepEqual(facets, { tags: ["db"], labels: ["region=eu", "region=us"] });
  } finally {
    await store.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] HostListings: one computation per question per second, ${LISTINGS_IN_FLIGHT} at once, a bounded queue`, async () => {
  const store = await testDatabase();
  const db = await store.open();
  try {
    await db.query(
      `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status, status_since)
       SELECT 'n-' || i, 'team-a', 'host-' || i, 'k' || i, 'SHA256:x', 'connected', now()
         FROM generate_series(1, 50) AS i`,
    );
    // The database as the listings see it: every statement counted, and held until released.
    let statements = 0;
    let inFlight = 0;
    let most = 0;
    let hold: Promise<void> | undefined;
    const counted = {
      async query<T>(sql: string, params?: unknown[]): Promise<T[]> {
        statements++;
        most = Math.max(most, ++inFlight);
        try {
          if (hold) await hold;
          return await db.query<T>(sql, params);
        } finally {
          inFlight--;
        }
      },
    } as typeof db;
    const listings = new HostListings(counted, 30, () => NOW);

    // Ten tabs asking the same thing at once: one listing (a count and a page) serves them all.
    const same = await Promise.all(
      Array.from({ length: 10 }, () => listings.list(["team-a"], BASE)),
    );
    assert.equal(statements, 2);
    assert.ok(same.every((l) => l === same[0]));

    // Distinct questions while the database is slow: never more than LISTINGS_IN_FLIGHT at once,
    // and past LISTINGS_WAITING waiting the next is refused, not queued.
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    const asked = Array.from(
      { length: LISTINGS_IN_FLIGHT + LISTINGS_WAITING },
      (_, i) => listings.list(["team-a"], { ...BASE, q: `q${i}` }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await assert.rejects(
      listings.list(["team-a"], { ...BASE, q: "one too many" }),
      (e: AegisError) => e.code === "RATE_LIMITED",
    );
    release();
    hold = undefined;
    const answered = await Promise.all(asked);
    assert.equal(answered.length, LISTINGS_IN_FLIGHT + LISTINGS_WAITING);
    assert.equal(most, LISTINGS_IN_FLIGHT);
  } finally {
    await store.cleanup();
  }
});
