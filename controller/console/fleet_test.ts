// The console's Fleet operations pages through the real console app: a real database, the real
// services (FleetDispatcher over ToolCallService over an EdgeHub with no streams, so every host
// is offline and no daemon is needed), and sessions signed in with real operator tokens.
import assert from "node:assert/strict";
import type { Queryable } from "../store/db.ts";
import { TEST_DB_KIND } from "../../tests/support/db.ts";
import { splitCommand, type StartForm, toRequest } from "./fleet.tsx";
import { consoleHarness } from "./test_support.ts";

async function insertHost(
  db: Queryable,
  host: { nodeId: string; name: string; tenant: string; tags?: string[]; labels?: object },
): Promise<void> {
  await db.query(
    `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
       status_since, tags, labels)
     VALUES ($1, $2, $3, $1, 'SHA256:x', 'disconnected', now(), $4, $5)`,
    [host.nodeId, host.tenant, host.name, host.tags ?? [], JSON.stringify(host.labels ?? {})],
  );
}

async function seed(db: Queryable): Promise<void> {
  await insertHost(db, { nodeId: "n-a1", name: "eu-web", tenant: "t-a", labels: { region: "eu" } });
  await insertHost(db, {
    nodeId: "n-a2",
    name: "eu-db",
    tenant: "t-a",
    labels: { region: "eu" },
    tags: ["db"],
  });
  await insertHost(db, { nodeId: "n-a3", name: "us-web", tenant: "t-a", labels: { region: "us" } });
  await insertHost(db, { nodeId: "n-b1", name: "b-eu", tenant: "t-b", labels: { region: "eu" } });
}

/** The node ids of the rows of one section of a page, in order. */
function rowIds(html: string, section: string, attribute = "data-node-id"): string[] {
  const start = html.indexOf(`id="${section}"`);
  assert.ok(start >= 0, `no #${section} in the page`);
  const rest = html.slice(start);
  return [...rest.matchAll(new RegExp(`<tr ${attribute}="([^"]+)"`, "g"))].map((m) => m[1]);
}

const START = {
  tenant: "t-a",
  operation: "exec",
  target: "labels=region:eu",
  mode: "rolling",
  width: "1",
  on_error: "continue",
  stop_after: "1",
  deadline_secs: "30",
  command: "uptime",
  run_as: "argv",
  keep_old: "24h",
};

Deno.test(`[${TEST_DB_KIND}] console fleet: the preview lists exactly the hosts the target selects`, async () => {
  const h = await consoleHarness();
  try {
    await seed(h.db);
    const admin = await h.signIn("t-a", "admin");
    // htmx asks for the #preview fragment only.
    const fragment = await admin.submit("/console/fleet/preview", START, {
      "hx-request": "true",
      "hx-target": "preview",
    });
    assert.equal(fragment.status, 200);
    const html = await fragment.text();
    assert.ok(!html.includes("<html"), "a fragment, not a page");
    assert.deepEqual(rowIds(html, "preview"), ["n-a2", "n-a1"]);
    assert.match(html, /selects 2\s+hosts in t-a/);
    assert.match(html, /labels are self-reported/);
    assert.match(html, /2 of them are\s+not connected/);
    // What the preview shows is what the dispatcher's selection is.
    const selection = await h.fleet.preview(
      { iss: "test", sub: "x", exp: 0, tenant_id: "t-a", aegis_role: "admin", tenants: [] },
      START.target,
    );
    assert.deepEqual(rowIds(html, "preview"), selection.hosts.map((host) => host.node_id));

    // Without JS the same button posts the form and gets the whole page back, values kept.
    const page = await admin.submit("/console/fleet/preview", {
      ...START,
      target: "tags=AnyOf(db)",
    });
    const pageHtml = await page.text();
    assert.match(pageHtml, /<html/);
    assert.deepEqual(rowIds(pageHtml, "preview"), ["n-a2"]);
    assert.match(pageHtml, /value="tags=AnyOf\(db\)"/);

    // Nothing matching, and a malformed target, are answers inside the preview.
    const none =
      await (await admin.submit("/console/fleet/preview", { ...START, target: "tags=AnyOf(x)" }, {
        "hx-request": "true",
        "hx-target": "preview",
      })).text();
    assert.match(none, /No host matches/);
    const bad = await admin.submit(
      "/console/fleet/preview",
      { ...START, target: "labels=region" },
      { "hx-request": "true", "hx-target": "preview" },
    );
    assert.equal(bad.status, 200);
    assert.match(await bad.text(), /bad --target at column 14/);
  } finally {
    await h.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] console fleet: a started operation on offline hosts runs to its end and explains each node`, async () => {
  const h = await consoleHarness();
  try {
    await seed(h.db);
    const admin = await h.signIn("t-a", "admin", { tenants: ["t-b"] });
    const form = await admin.get("/console/fleet/new");
    assert.equal(form.status, 200);
    const formHtml = await form.text();
    assert.match(formHtml, /<form[^>]*method="post"[^>]*action="\/console\/fleet"/);
    assert.match(formHtml, /<label>\s*Target\s*<input/);

    const started = await admin.submit("/console/fleet", START);
    assert.equal(started.status, 303);
    const location = started.headers.get("location")!;
    const opId = location.match(/^\/console\/fleet\/(op-[0-9a-f]+)$/)?.[1];
    assert.ok(opId, location);
    // The response is gone; the operation still runs to its end on the controller.
    await h.actions.idle();

    const detail = await admin.get(`/console/fleet/${opId}`);
    assert.equal(detail.status, 200);
    const html = await detail.text();
    assert.match(html, /class="badge done"/);
    assert.match(html, /0 ok, 2 failed \(2 offline\), 0 skipped/);
    // rolling=1: each host its own wave, in target order (name), each with why it failed.
    assert.match(html, /Wave 1[\s\S]*n-a2[\s\S]*Wave 2[\s\S]*n-a1/);
    assert.match(html, /host n-a2 is not connected/);
    assert.match(html, /host n-a1 is not connected/);
    assert.match(html, /rolling=1, on error continue, deadline 30 s per node/);
    assert.ok(!html.includes('hx-trigger="every 2s"'), "a finished operation stops refreshing");

    const list = await (await admin.get("/console/fleet")).text();
    assert.deepEqual(rowIds(list, "ops", "data-op-id"), [opId]);
    assert.match(list, /labels=region:eu/);
    assert.match(list, /admin@t-a/);
    assert.match(list, /0 ok, 2 failed \(2 offline\), 0 skipped/);
    assert.match(list, /href="\/console\/fleet\/new"/);

    // A second operation, on the other tenant this admin holds: listed above the first.
    const second = await admin.submit("/console/fleet", {
      ...START,
      tenant: "t-b",
      mode: "sequential",
      on_error: "fail-fast",
      target: "all",
    });
    assert.equal(second.status, 303);
    await h.actions.idle();
    const ids = rowIds(await (await admin.get("/console/fleet")).text(), "ops", "data-op-id");
    assert.equal(ids.length, 2);
    assert.equal(ids[1], opId, "newest first");
  } finally {
    await h.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] console fleet: a running operation's pages refresh themselves, and only while it runs`, async () => {
  const h = await consoleHarness();
  try {
    await seed(h.db);
    const admin = await h.signIn("t-a", "admin");
    // Recorded as running (a controller elsewhere drives it), with one result so far.
    await h.db.query(
      `INSERT INTO fleet_operations (op_id, tenant_id, operation, target, mode, on_error,
         deadline_secs, requested_by, relay_id, status, total, started_at)
       VALUES ('op-00000001', 't-a', 'token.refresh', 'all', 'rolling=2', 'continue', 60,
         'someone', 'r2', 'running', 3, now())`,
    );
    await h.db.query(
      `INSERT INTO fleet_results (op_id, node_id, name, wave, status, detail, exit_code, finished_at)
       VALUES ('op-00000001', 'n-a2', 'eu-db', 1, 'ok', 'refreshed', 0, now())`,
    );
    const list = await (await admin.get("/console/fleet")).text();
    assert.match(list, /id="ops"[^>]*hx-trigger="every 2s"/);
    const page = await (await admin.get("/console/fleet/op-00000001")).text();
    assert.match(page, /id="op"[^>]*hx-trigger="every 2s"/);
    assert.match(page, /1 ok, 0 failed, 0 skipped/);
    assert.match(page, /1 running or not started yet/);
    const v = page.match(/data-fingerprint="([0-9a-f]+)"/)![1];
    const poll = { "hx-request": "true", "hx-target": "op", "hx-trigger": "op" };
    // Unchanged: nothing to swap.
    assert.equal((await admin.get(`/console/fleet/op-00000001?v=${v}`, poll)).status, 204);
    await h.db.query(
      `INSERT INTO fleet_results (op_id, node_id, name, wave, status, detail, exit_code, finished_at)
       VALUES ('op-00000001', 'n-a1', 'eu-web', 1, 'timed_out', 'deadline 60s passed', null, now())`,
    );
    const changed = await admin.get(`/console/fleet/op-00000001?v=${v}`, poll);
    assert.equal(changed.status, 200);
    const fragment = await changed.text();
    assert.ok(!fragment.includes("<html"));
    assert.match(fragment, /deadline 60s passed/);
    await h.db.query(`UPDATE fleet_operations SET status = 'interrupted', finished_at = now()`);
    const ended = await (await admin.get(`/console/fleet/op-00000001?v=${v}`, poll)).text();
    assert.ok(!ended.includes("hx-trigger"), "the swapped-in section stops polling");
    assert.match(ended, /1 without a result/);
  } finally {
    await h.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] console fleet: readonly sees no start form and is refused; CSRF and tenants hold`, async () => {
  const h = await consoleHarness();
  try {
    await seed(h.db);
    const admin = await h.signIn("t-a", "admin");
    const started = await admin.submit("/console/fleet", { ...START, target: "n-a3" });
    assert.equal(started.status, 303);
    const opId = started.headers.get("location")!.split("/").at(-1)!;
    await h.actions.idle();

    const readonly = await h.signIn("t-a", "readonly");
    const list = await (await readonly.get("/console/fleet")).text();
    assert.deepEqual(rowIds(list, "ops", "data-op-id"), [opId], "readonly reads");
    assert.ok(!list.includes("/console/fleet/new"), "no way to start");
    assert.doesNotMatch(list, /<main[\s\S]*(method="post"|hx-post)[\s\S]*<\/main>/);
    const detail = await (await readonly.get(`/console/fleet/${opId}`)).text();
    assert.doesNotMatch(detail, /<main[\s\S]*(method="post"|hx-post)[\s\S]*<\/main>/);
    assert.equal((await readonly.get("/console/fleet/new")).status, 403);
    const refused = await readonly.submit("/console/fleet", START);
    assert.equal(refused.status, 403);
    assert.match(
      await refused.text(),
      /role (&quot;|")readonly(&quot;|") cannot start fleet operations/,
    );

    // A change without the session's CSRF token is refused before anything runs.
    const forged = await admin.post("/console/fleet", START);
    assert.equal(forged.status, 403);
    assert.equal((await h.fleet.list(readonlyOperator("t-a"))).length, 1, "nothing started");

    // Another tenant's operation does not exist for this operator.
    const other = await h.signIn("t-b", "admin");
    assert.equal((await other.get(`/console/fleet/${opId}`)).status, 404);
    assert.deepEqual(
      rowIds(await (await other.get("/console/fleet")).text(), "ops", "data-op-id"),
      [],
    );
    // Nor can a session start on a tenant it has no rights on.
    const foreign = await other.submit("/console/fleet", {
      ...START,
      tenant: "t-a",
      target: "all",
    });
    assert.equal(foreign.status, 403);
    assert.match(await foreign.text(), /no rights on tenant/);
    assert.equal((await h.fleet.list(readonlyOperator("t-a"))).length, 1, "nothing started");

    // A form mistake comes back on the form with the values kept.
    const bad = await admin.submit("/console/fleet", { ...START, target: "tags=AnyOf(nope)" });
    assert.equal(bad.status, 404);
    const badHtml = await bad.text();
    assert.match(badHtml, /no hosts match --target tags=AnyOf\(nope\)/);
    assert.match(badHtml, /value="tags=AnyOf\(nope\)"/);
  } finally {
    await h.cleanup();
  }
});

function readonlyOperator(tenant: string) {
  return {
    iss: "test",
    sub: "reader",
    exp: 0,
    tenant_id: tenant,
    aegis_role: "readonly" as const,
    tenants: [],
  };
}

Deno.test("console fleet: splitCommand splits like a shell without running one", () => {
  assert.deepEqual(splitCommand("uptime"), ["uptime"]);
  assert.deepEqual(splitCommand(`  ls  -la   /tmp `), ["ls", "-la", "/tmp"]);
  assert.deepEqual(splitCommand(`echo 'a  b' "c \\"d\\"" e\\ f ''`), [
    "echo",
    "a  b",
    'c "d"',
    "e f",
    "",
  ]);
  assert.throws(() => splitCommand(`echo 'open`), /unclosed ' quote/);
  assert.throws(() => splitCommand("   "), /needs a command/);
});

Deno.test("console fleet: the form makes the request the CLI would send", () => {
  const form: StartForm = {
    tenant: "t-a",
    operation: "exec",
    target: "all",
    mode: "rolling",
    width: "3",
    onError: "stop-after",
    stopAfter: "2",
    deadline: "45",
    command: "systemctl restart 'my unit'",
    runAs: "argv",
    keepOld: "24h",
  };
  const request = toRequest(form);
  assert.deepEqual(
    [request.mode.label, request.onError.label, request.deadlineSecs, request.tenantId],
    ["rolling=3", "stop-after=2", 45, "t-a"],
  );
  assert.deepEqual(request.arguments, {
    argv: ["systemctl", "restart", "my unit"],
    timeout_secs: 45,
  });
  assert.deepEqual(toRequest({ ...form, runAs: "shell" }).arguments, {
    shell: "systemctl restart 'my unit'",
    timeout_secs: 45,
  });
  assert.deepEqual(toRequest({ ...form, operation: "keys.rotate", keepOld: "7d" }).arguments, {
    keep_old: "7d",
  });
  assert.deepEqual(toRequest({ ...form, operation: "token.refresh" }).arguments, {});
  assert.equal(toRequest({ ...form, mode: "parallel", onError: "fail-fast" }).onError.stopAfter, 1);
  assert.throws(() => toRequest({ ...form, width: "0" }), /rolling width/);
  assert.throws(() => toRequest({ ...form, deadline: "1.5" }), /deadline/);
  assert.throws(() => toRequest({ ...form, target: " " }), /give a target/);
  assert.throws(() => toRequest({ ...form, command: "" }), /needs a command/);
  assert.throws(
    () => toRequest({ ...form, operation: "keys.rotate", keepOld: "soon" }),
    /duration/,
  );
});

Deno.test(`[${TEST_DB_KIND}] console fleet: Stop on a running operation, for writers of its tenant only`, async () => {
  const h = await consoleHarness();
  try {
    // A running operation whose runner is elsewhere (another relay): the request is recorded
    // for that runner to read.
    const running = (opId: string, tenant: string, status = "running") =>
      h.db.query(
        `INSERT INTO fleet_operations (op_id, tenant_id, operation, target, mode, on_error,
           deadline_secs, requested_by, relay_id, status, total, started_at)
         VALUES ($1, $2, 'exec', 'all', 'sequential', 'continue', 30, 'x', 'elsewhere', $3, 3, now())`,
        [opId, tenant, status],
      );
    await running("op-run1", "t-a");
    await running("op-done", "t-a", "done");
    await running("op-othr", "t-b");
    const admin = await h.signIn("t-a", "admin");
    const reader = await h.signIn("t-a", "readonly");

    const page = await (await admin.get("/console/fleet/op-run1")).text();
    assert.match(page, /Stop: start no more hosts/);
    assert.doesNotMatch(await (await reader.get("/console/fleet/op-run1")).text(), /Stop:/);

    assert.equal((await reader.submit("/console/fleet/op-run1/stop", {})).status, 403);
    assert.equal((await admin.post("/console/fleet/op-run1/stop", {})).status, 403, "no CSRF");
    assert.equal((await admin.submit("/console/fleet/op-othr/stop", {})).status, 404);
    assert.equal((await admin.submit("/console/fleet/op-done/stop", {})).status, 409);
    const stopped = await admin.submit("/console/fleet/op-run1/stop", {});
    assert.equal(stopped.status, 303);
    const [row] = await h.db.query<{ stop_requested_by: string }>(
      `SELECT stop_requested_by FROM fleet_operations WHERE op_id = 'op-run1'`,
    );
    assert.equal(row.stop_requested_by, "admin@t-a");
    const after = await (await admin.get("/console/fleet/op-run1")).text();
    assert.match(after, /admin@t-a asked it to start no more hosts/);
    assert.doesNotMatch(after, /Stop: start no more hosts/);
  } finally {
    await h.cleanup();
  }
});
