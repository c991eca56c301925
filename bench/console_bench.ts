// The web console's Edge Hosts page with many hosts: the server's time to answer (its own
// Server-Timing: query, selection and rendering) and the client's round trip, for the first page,
// a big page, a filtered and a sorted view and the 2-second live refresh when nothing changed;
// and the bytes a first visit downloads. Prints numbers; asserts nothing about them.
//
//   deno task bench:console [--hosts 1000] [--requests 200]
//   AEGIS_TEST_PG_DSN=postgres://… deno task bench:console     # on a real PostgreSQL
import { parseArgs } from "node:util";
import { request } from "node:http";
import { TEST_DB_KIND } from "../tests/support/db.ts";
import { startInProcessController } from "../tests/support/in_process_controller.ts";
import { ASSETS } from "../controller/console/assets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    hosts: { type: "string", default: "1000" },
    requests: { type: "string", default: "200" },
  },
});
const HOSTS = Number(values.hosts);
const REQUESTS = Number(values.requests);

const { controller, base, close } = await startInProcessController([], "bench");

try {
  // A fleet as the console meets it: mixed status, OS, versions, labels and a few tags.
  await controller.db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
        status_since, last_heartbeat_at, capabilities, labels, tags)
     SELECT 'n-' || lpad(i::text, 6, '0'), 'team-a', 'host-' || i, 'k' || i, 'SHA256:' || md5(i::text),
            CASE WHEN i % 3 = 0 THEN 'disconnected' WHEN i % 50 = 0 THEN 'revoked' ELSE 'connected' END,
            now(), now() - (i % 20) * interval '1 second',
            jsonb_build_object('os', CASE WHEN i % 4 = 0 THEN 'darwin' ELSE 'linux' END, 'arch', 'x86_64',
                               'hostname', 'host-' || i || '.example', 'agent_version', '4.0.' || (i % 3)),
            jsonb_build_object('region', CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, 'role', 'web'),
            CASE WHEN i % 10 = 0 THEN ARRAY['db','prod'] ELSE ARRAY['web'] END
       FROM generate_series(1, $1::int) AS i`,
    [HOSTS],
  );
  const token = await controller.tokens.issueOperator({
    subject: "bench",
    tenantId: "team-a",
    role: "admin",
    ttlSecs: 3600,
  });
  const login = await fetch(`${base}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: base },
    body: new URLSearchParams({ token }),
  });
  await login.body?.cancel();
  const cookie = login.headers.get("set-cookie")!.split(";")[0];

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const started = performance.now();
    const response = await fetch(base + path, {
      headers: { cookie, "accept-encoding": "gzip", ...headers },
    });
    const body = new Uint8Array(await response.arrayBuffer());
    const roundTrip = performance.now() - started;
    const server = Number(response.headers.get("server-timing")?.match(/dur=([\d.]+)/)?.[1]);
    return { response, body, roundTrip, server };
  };
  const pct = (xs: number[], p: number) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
  };
  const results: Record<string, unknown> = {};
  // `path` may vary by request: a question asked once (a new page, a new search) is computed;
  // the same question again within a second is answered from the listing every tab shares.
  const measure = async (
    label: string,
    path: string | ((i: number) => string),
    headers: Record<string, string> = {},
  ) => {
    const at = (i: number) => typeof path === "string" ? path : path(i);
    const first = await get(at(0), headers);
    const server: number[] = [];
    const trip: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const r = await get(at(i + 1), headers);
      server.push(r.server);
      trip.push(r.roundTrip);
    }
    const row = {
      status: first.response.status,
      bytes: first.body.length,
      first_server_ms: Number(first.server.toFixed(2)),
      server_p50_ms: Number(pct(server, 0.5).toFixed(2)),
      server_p99_ms: Number(pct(server, 0.99).toFixed(2)),
      round_trip_p50_ms: Number(pct(trip, 0.5).toFixed(2)),
    };
    results[label] = row;
    console.log(
      `${label.padEnd(34)} ${String(row.status).padStart(3)} ${String(row.bytes).padStart(7)} B  ` +
        `server p50 ${row.server_p50_ms} ms, p99 ${row.server_p99_ms} ms (first ${row.first_server_ms}); ` +
        `round trip p50 ${row.round_trip_p50_ms} ms`,
    );
    return first;
  };

  console.log(`${HOSTS} hosts on ${TEST_DB_KIND}, ${REQUESTS} requests each`);
  const page = await measure("hosts page (50 per page)", "/console/hosts");
  await measure("hosts page (200 per page)", "/console/hosts?per=200");
  await measure("filtered (q=host-9, tag=web)", "/console/hosts?q=host-9&tag=web");
  await measure("sorted by heartbeat, last page", "/console/hosts?sort=heartbeat&dir=desc&page=20");
  const pages = Math.max(1, Math.ceil(HOSTS / 50));
  await measure(
    "each request a new page (uncached)",
    (i) => `/console/hosts?page=${(i % pages) + 1}&per=50&dir=${i % 2 ? "desc" : "asc"}`,
  );
  await measure("each request a new search (uncached)", (i) => `/console/hosts?q=host-${i}`);
  const fingerprint =
    new TextDecoder().decode(page.body).match(/data-fingerprint="([0-9a-f]+)"/)![1];
  await measure("live refresh, nothing changed", `/console/hosts?v=${fingerprint}`, {
    "hx-request": "true",
    "hx-trigger": "hosts",
    "hx-target": "hosts",
  });

  // A first visit as a browser makes it: the page, then its three assets, each asking for gzip;
  // the bytes counted are the bytes on the wire (node:http does not decompress).
  const wire = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        base + path,
        { headers: { cookie, "accept-encoding": "gzip" } },
        (res) => {
          let bytes = 0;
          res.on("data", (chunk: Uint8Array) => (bytes += chunk.length));
          res.on("end", () => resolve(bytes));
        },
      );
      req.on("error", reject);
      req.end();
    });
  const html = await wire("/console/hosts");
  let assetsSent = 0;
  for (const asset of Object.values(ASSETS)) assetsSent += await wire(asset.path);
  const assetsRaw = Object.values(ASSETS).reduce((n, a) => n + a.body.length, 0);
  results.first_load = {
    html_sent_bytes: html,
    html_bytes: page.body.length,
    assets_raw_bytes: assetsRaw,
    assets_sent_bytes: assetsSent,
    total_sent_bytes: html + assetsSent,
  };
  console.log(
    `first load: page ${html} B sent (${page.body.length} B of HTML), assets ${assetsSent} B sent ` +
      `(${assetsRaw} B raw); total ${html + assetsSent} B`,
  );
  console.log(JSON.stringify({ hosts: HOSTS, db: TEST_DB_KIND, ...results }));
} finally {
  await close();
}
