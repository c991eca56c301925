// The host detail page through the real console app: real database, real services, a real
// session cookie and CSRF token, and the test playing the node over a real EdgeHub stream (its
// Hello marks it connected and writes the connection log; it answers commands).
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ToolEventSchema } from "../../shared/gen/aegis/edge/v1/node_cluster_pb.ts";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { sealEnvelope } from "../../shared/crypto/envelope.ts";
import { fromBase64 } from "../../shared/crypto/encoding.ts";
import { TEST_DB_KIND } from "../../tests/support/db.ts";
import type { EdgeSession } from "../app/edge_sessions.ts";
import { CONNECTIONS_KEPT_PER_NODE } from "../app/connection_log.ts";
import { CONNECTIONS_SHOWN } from "./host_detail.tsx";
import { consoleHarness } from "./test_support.ts";

async function setup() {
  // The hour-long heartbeat the node's Hello below asks for too.
  const h = await consoleHarness({ heartbeatIntervalSecs: 3600 });
  const { db, tokens, hub } = h;

  const sessions: EdgeSession[] = [];
  const keys = new Map<string, { key: NodePrivateKey; token: string }>();
  /** Adds the host record as enrollment leaves it (pending, with a key and a token). */
  const enroll = async (nodeId: string, tenant: string, name: string) => {
    const key = NodePrivateKey.generate();
    const fingerprint = await key.publicKey.fingerprint();
    const { token, claims } = await tokens.issueNode({
      nodeId,
      tenantId: tenant,
      keyFingerprint: fingerprint,
      ttlSecs: 3600,
    });
    await db.query(
      `INSERT INTO edge_daemons (node_id, tenant_id, name, public_key, key_fingerprint, status,
         status_since, token_jti, token_expires_at)
       VALUES ($1, $2, $3, $4, $5, 'pending', now(), $6, $7)`,
      [
        nodeId,
        tenant,
        name,
        key.publicKey.toBase64(),
        fingerprint,
        claims.jti,
        new Date(claims.exp * 1000),
      ],
    );
    keys.set(nodeId, { key, token });
    return fingerprint;
  };
  /** A stream of the node says Hello; the node answers each command with "hi\n" and exit 0. */
  const connect = async (nodeId: string): Promise<EdgeSession> => {
    const { key, token } = keys.get(nodeId)!;
    const session = hub.open("198.51.100.9:5555");
    sessions.push(session);
    await session.receive(sealEnvelope({
      key,
      token,
      nodeId,
      streamNonce: session.nonce,
      seq: 1n,
      body: {
        case: "hello",
        value: {
          heartbeatIntervalSecs: 3600,
          capabilities: {
            hostname: "web-1.example.net",
            os: "linux",
            arch: "amd64",
            agentVersion: "9.8.7",
            localTools: ["shell", "files"],
            mountPoints: ["/srv/data"],
            maxConcurrentCalls: 7,
          },
          labels: { zone: "eu-west" },
        } as never,
      },
    }));
    (async () => {
      for (let r = await session.outbox.next(); !r.done; r = await session.outbox.next()) {
        if (r.value.body.case !== "toolCall") continue;
        const callId = r.value.body.value.callId;
        await hub.calls.deliver(
          nodeId,
          create(ToolEventSchema, {
            callId,
            event: { case: "stdout", value: new TextEncoder().encode("hi\n") },
          }),
        );
        await hub.calls.deliver(
          nodeId,
          create(ToolEventSchema, { callId, event: { case: "exit", value: { exitCode: 0 } } }),
        );
      }
    })().catch(() => {}); // the stream ended
    return session;
  };
  const cleanup = async () => {
    for (const session of sessions) await session.closed();
    await h.cleanup();
  };
  return { ...h, enroll, connect, cleanup };
}

/** Whether the HTML holds anything that changes state: POST forms, htmx posts, the run form. */
function changeControls(html: string): string[] {
  return html.match(/<form[^>]*method="post"[^>]*>|hx-post="[^"]*"|data-exec="[^"]*"/g) ?? [];
}

/** The page's <main>: the header's sign-out form is not a change to the host. */
function main(html: string): string {
  return html.slice(html.indexOf("<main"), html.indexOf("</main>"));
}

Deno.test(`[${TEST_DB_KIND}] the host page shows an own-tenant host's facts, and another tenant's host is not found`, async () => {
  const t = await setup();
  try {
    const fingerprint = await t.enroll("n-a", "t1", "web-1");
    await t.connect("n-a");
    const admin = await t.signIn("t1", "admin");

    const page = await admin.get("/console/hosts/n-a");
    assert.equal(page.status, 200);
    const html = await page.text();
    for (
      const fact of [
        "<title>web-1 · AEGIS Edge</title>",
        'class="badge connected"',
        "n-a",
        "t1",
        "web-1.example.net",
        "linux/amd64",
        "9.8.7",
        fingerprint,
        '<span class="chip">shell</span>',
        '<span class="chip">/srv/data</span>',
        "<dd>7</dd>",
        '<span class="chip">zone=eu-west</span>',
        "198.51.100.9:5555",
        "the node&#39;s current token is valid until",
        "connected now",
        'hx-trigger="history-changed from:body"',
        'data-exec="run-out"',
        'href="/console/hosts/n-a/revoke"',
      ]
    ) assert.ok(html.includes(fact), `the page shows ${fact}`);

    // The live area answers 204 while nothing it shows changed, and the fragment when it did.
    const fp = html.match(/data-fingerprint="([0-9a-f]+)"/)![1];
    const same = await admin.get(`/console/hosts/n-a/live?v=${fp}`, { "hx-request": "true" });
    assert.equal(same.status, 204);
    await t.db.query("UPDATE edge_daemons SET reconnects = 41 WHERE node_id = 'n-a'");
    const changed = await admin.get(`/console/hosts/n-a/live?v=${fp}`, { "hx-request": "true" });
    assert.equal(changed.status, 200);
    assert.match(await changed.text(), /<dd>41<\/dd>/);

    // Another tenant's admin: exactly like a missing host, on every route.
    const other = await t.signIn("t2", "admin");
    for (const path of ["", "/live", "/history", "/revoke"]) {
      const response = await other.get(`/console/hosts/n-a${path}`);
      assert.equal(response.status, 404, path);
      assert.ok(!(await response.text()).includes("web-1.example.net"));
    }
    assert.equal(
      (await other.post("/console/hosts/n-a/tags", { _csrf: other.csrf, tag: "x" })).status,
      404,
    );
    assert.equal(
      (await other.post("/console/hosts/n-a/revoke", { _csrf: other.csrf })).status,
      404,
    );
    assert.equal((await t.daemons.get("n-a"))!.status, "connected");
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] tags are added and removed from the page; readonly and CSRF-less changes are refused`, async () => {
  const t = await setup();
  try {
    await t.enroll("n-a", "t1", "web-1");
    const admin = await t.signIn("t1", "operator");
    const tags = async () => (await t.daemons.get("n-a"))!.tags;

    // Without JS: a plain form post, answered with a redirect back to the page.
    const added = await admin.post("/console/hosts/n-a/tags", {
      _csrf: admin.csrf,
      tag: "web prod",
    });
    assert.equal(added.status, 303);
    assert.equal(added.headers.get("location"), "/console/hosts/n-a");
    assert.deepEqual(await tags(), ["prod", "web"]);

    // With htmx: the header token, and the tags section comes back to be swapped in.
    const htmx = { "hx-request": "true", "x-csrf-token": admin.csrf };
    const removed = await admin.post("/console/hosts/n-a/tags/remove", { tag: "prod" }, htmx);
    assert.equal(removed.status, 200);
    const section = await removed.text();
    assert.match(section, /^<section id="tags"/);
    assert.ok(section.includes('<input type="hidden" name="tag" value="web"/>'));
    assert.ok(!section.includes('value="prod"'));
    assert.deepEqual(await tags(), ["web"]);

    // A bad tag is shown in the section (htmx swaps only 2xx), and changes nothing.
    const bad = await admin.post("/console/hosts/n-a/tags", { tag: "no/slash" }, htmx);
    assert.equal(bad.status, 200);
    assert.match(await bad.text(), /role="alert">invalid tag &quot;no\/slash&quot;/);
    assert.deepEqual(await tags(), ["web"]);

    // No CSRF token: refused before anything is read.
    assert.equal((await admin.post("/console/hosts/n-a/tags", { tag: "forged" })).status, 403);
    assert.equal(
      (await admin.post("/console/hosts/n-a/tags", { _csrf: "x".repeat(43), tag: "forged" }))
        .status,
      403,
    );
    // Readonly, with its own valid token: refused by role.
    const reader = await t.signIn("t1", "readonly");
    for (const path of ["/console/hosts/n-a/tags", "/console/hosts/n-a/tags/remove"]) {
      const response = await reader.post(path, { _csrf: reader.csrf, tag: "web" });
      assert.equal(response.status, 403, path);
    }
    assert.deepEqual(await tags(), ["web"]);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] a readonly operator's host page has no control that changes anything, and the server refuses them`, async () => {
  const t = await setup();
  try {
    await t.enroll("n-a", "t1", "web-1");
    await t.connect("n-a");
    await t.db.query("UPDATE edge_daemons SET tags = '{web}' WHERE node_id = 'n-a'");
    const reader = await t.signIn("t1", "readonly");
    const html = await (await reader.get("/console/hosts/n-a")).text();
    assert.deepEqual(changeControls(main(html)), []);
    assert.ok(!html.includes("/revoke"));
    assert.ok(html.includes('<span class="chip">web</span>'), "tags are shown, as text");
    assert.ok(html.includes('id="history"'), "history is shown");

    assert.equal((await reader.get("/console/hosts/n-a/revoke")).status, 403);
    const headers = { "x-csrf-token": reader.csrf };
    assert.equal((await reader.post("/console/hosts/n-a/revoke", {}, headers)).status, 403);
    const exec = await reader.get("/console/hosts/n-a/exec");
    assert.equal(exec.status, 404, "exec is POST only");
    const run = await reader.post("/console/hosts/n-a/exec", {}, headers);
    assert.equal(run.status, 403);
    assert.equal((await run.json()).error.code, "FORBIDDEN");
    assert.equal((await t.daemons.get("n-a"))!.status, "connected");
    assert.deepEqual(await t.db.query("SELECT call_id FROM tool_calls"), []);

    // The same page for a writer does have them (so the check above checks something).
    // Remove tag "web", add a tag, run a command; and the link to the revoke confirmation.
    const admin = await t.signIn("t1", "admin");
    const writerPage = main(await (await admin.get("/console/hosts/n-a")).text());
    assert.equal(changeControls(writerPage).length, 3);
    assert.ok(writerPage.includes('href="/console/hosts/n-a/revoke"'));
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] running a command from the page streams NDJSON and the history lists who ran what`, async () => {
  const t = await setup();
  try {
    await t.enroll("n-a", "t1", "web-1");
    await t.connect("n-a");
    const admin = await t.signIn("t1", "operator", { subject: "alice" });
    // What console.js sends: JSON with the header token.
    const exec = await admin.postJson("/console/hosts/n-a/exec", {
      shell: "echo hi",
      timeout_secs: 5,
    });
    assert.equal(exec.status, 200);
    assert.equal(exec.headers.get("content-type"), "application/x-ndjson");
    const events = (await exec.text()).trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(events.map((e) => e.type), ["started", "stdout", "exit"]);
    assert.equal(new TextDecoder().decode(fromBase64(events[1].data)), "hi\n");
    assert.equal(events[2].exit_code, 0);

    await t.calls.flushHistory();
    const history = await (await admin.get("/console/hosts/n-a/history", {
      "hx-request": "true",
    })).text();
    assert.match(history, /^<section id="history"/);
    assert.ok(history.includes('<td data-label="Who">alice</td>'));
    assert.ok(history.includes("<code>echo hi</code>"));
    assert.ok(history.includes('<td data-label="Exit">0</td>'));
    assert.ok(history.includes('<td data-label="Output">3 B</td>'));

    // A body REST would refuse is refused the same way.
    const bad = await admin.postJson("/console/hosts/n-a/exec", { timeout_secs: 5 });
    assert.equal(bad.status, 400);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] revoke: the confirmation names the host; confirming revokes it and the page says Revoked`, async () => {
  const t = await setup();
  try {
    await t.enroll("n-a", "t1", "web-1");
    await t.connect("n-a");
    const admin = await t.signIn("t1", "admin");
    const confirm = await (await admin.get("/console/hosts/n-a/revoke")).text();
    for (
      const named of [
        "Revoke web-1?",
        "<dd>web-1</dd>",
        "<dd>web-1.example.net</dd>",
        '<dd class="mono">n-a</dd>',
        "<dd>t1</dd>",
        'action="/console/hosts/n-a/revoke"',
        ">Revoke web-1</button>",
      ]
    ) assert.ok(confirm.includes(named), `the confirmation shows ${named}`);
    assert.equal((await t.daemons.get("n-a"))!.status, "connected", "asking changes nothing");

    const revoked = await admin.post("/console/hosts/n-a/revoke", { _csrf: admin.csrf });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.headers.get("location"), "/console/hosts/n-a");
    assert.equal((await t.daemons.get("n-a"))!.status, "revoked");
    await t.daemons.drain();

    const page = await (await admin.get("/console/hosts/n-a")).text();
    assert.ok(page.includes('class="badge revoked"'));
    assert.ok(!page.includes("data-exec"), "no command box for a revoked host");
    assert.ok(!page.includes('href="/console/hosts/n-a/revoke"'));
    // The stream it held was ended, and the connection log says when.
    assert.ok(!page.includes("connected now"));
    const [row] = await t.db.query<{ disconnected_at: Date | null }>(
      "SELECT disconnected_at FROM edge_connections WHERE node_id = 'n-a'",
    );
    assert.ok(row.disconnected_at instanceof Date);
    // Asking again says so, and offers nothing to press.
    const again = await (await admin.get("/console/hosts/n-a/revoke")).text();
    assert.ok(again.includes("already revoked"));
    assert.deepEqual(changeControls(main(again)), []);
  } finally {
    await t.cleanup();
  }
});

Deno.test(`[${TEST_DB_KIND}] each connection is logged on connect and disconnect, bounded, and the page shows the newest ${CONNECTIONS_SHOWN}`, async () => {
  const t = await setup();
  try {
    await t.enroll("n-a", "t1", "web-1");
    const admin = await t.signIn("t1", "admin");
    const streams = CONNECTIONS_KEPT_PER_NODE + 3;
    for (let i = 0; i < streams; i++) {
      const session = await t.connect("n-a");
      await session.closed();
    }
    await t.connect("n-a");
    await t.daemons.drain();
    const rows = await t.db.query<{ open: boolean }>(
      `SELECT disconnected_at IS NULL AS open FROM edge_connections WHERE node_id = 'n-a'
        ORDER BY connected_at DESC, id DESC`,
    );
    assert.equal(rows.length, CONNECTIONS_KEPT_PER_NODE);
    assert.deepEqual(rows.map((r) => r.open), [true, ...Array(rows.length - 1).fill(false)]);

    const html = await (await admin.get("/console/hosts/n-a")).text();
    assert.equal(html.match(/<td data-label="Connected">/g)?.length, CONNECTIONS_SHOWN);
    assert.equal(html.match(/connected now/g)?.length, 1);
    assert.equal(
      html.match(/<td data-label="Relay" class="mono">r1<\/td>/g)?.length,
      CONNECTIONS_SHOWN,
    );
  } finally {
    await t.cleanup();
  }
});
