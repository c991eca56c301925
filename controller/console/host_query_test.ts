import assert from "node:assert/strict";
import { hostQueryString, parseHostQuery } from "./host_query.ts";

Deno.test("parseHostQuery() takes what it understands and defaults the rest", () => {
  const q = parseHostQuery(
    new URLSearchParams(
      "status=connected&tag=db&label=region=eu&q=%20web%20&sort=heartbeat&dir=desc&page=3&per=100",
    ),
  );
  assert.deepEqual(q, {
    tenant: undefined,
    status: "connected",
    tag: "db",
    label: "region=eu",
    q: "web",
    sort: "heartbeat",
    desc: true,
    page: 3,
    per: 100,
  });
  const junk = parseHostQuery(
    new URLSearchParams(`status=sleepy&sort=password&page=-4&per=100000&q=${"x".repeat(5000)}`),
  );
  assert.equal(junk.status, undefined);
  assert.equal(junk.sort, "name");
  assert.equal(junk.page, 1);
  assert.equal(junk.per, 50);
  assert.equal(junk.q!.length, 200);
  // The URL round-trips, defaults left out.
  assert.equal(
    hostQueryString(q),
    "?status=connected&tag=db&label=region%3Deu&q=web&sort=heartbeat&dir=desc&page=3&per=100",
  );
  assert.equal(hostQueryString(parseHostQuery(new URLSearchParams(""))), "");
});
