// The Add Edge Host page through the real console app: real database, real services, a real
// session signed in with an operator token. The host's enrollment is a real one (attest, sign the
// challenge, redeem the token) and its connection is recorded by DaemonRepository like a Hello.
import assert from "node:assert/strict";
import { NodePrivateKey } from "../../shared/crypto/node_key.ts";
import { challengeBytes } from "../../shared/crypto/signed_bytes.ts";
import { TEST_DB_KIND } from "../../tests/support/db.ts";
import type { EnrollmentService } from "../app/enrollment.ts";
import { type ConsoleHarness, withConsole } from "./test_support.ts";

const BOOTSTRAP = "https://ctl.example.test:8443";
const TTL_SECS = 900;
const HEARTBEAT_SECS = 5;

/** The console on a clock the test moves (tokens expire), with one-liners for the bootstrap URL. */
async function withAddHost(
  fn: (h: ConsoleHarness & { setNow(d: Date): void; now(): Date }) => Promise<void>,
): Promise<void> {
  let now = new Date();
  const clock = () => now;
  await withConsole({
    clock,
    heartbeatIntervalSecs: HEARTBEAT_SECS,
    attestPerMinute: 1000,
    enrollment: {
      publicEndpoint: "ctl.example.test:8443",
      enrollmentTtlSecs: TTL_SECS,
      clockSkewLeewaySecs: 300,
      bootstrapUrl: BOOTSTRAP,
    },
  }, (h) => fn({ ...h, setNow: (d) => now = d, now: clock }));
}

/** What a host does with the command: attest its key, sign the challenge, redeem the token. */
async function enrollHost(enrollment: EnrollmentService, token: string) {
  const key = NodePrivateKey.generate();
  const c = await enrollment.attest({
    publicKey: key.publicKey.bytes,
    hostname: "web-1.example.test",
    os: "linux",
    arch: "x86_64",
    remoteAddr: "192.0.2.7",
  });
  const signature = key.sign(challengeBytes(c.challengeId, c.nonce, key.publicKey.bytes));
  return await enrollment.enroll({ challengeId: c.challengeId, signature, enrollmentToken: token });
}

function unescape(html: string): string {
  return html.replaceAll("&#39;", "'").replaceAll("&quot;", '"').replaceAll("&amp;", "&")
    .replaceAll("&lt;", "<").replaceAll("&gt;", ">");
}

/** The text of the element with this id (pre blocks hold plain text). */
function textOf(html: string, id: string): string | undefined {
  const m = html.match(new RegExp(`id="${id}"[^>]*>([^<]*)<`));
  return m ? unescape(m[1]) : undefined;
}

Deno.test(`[${TEST_DB_KIND}] Add Edge Host: the form offers the operator's tenants; Issue Token shows the command, one-liners, QR and countdown`, async () => {
  await withAddHost(async ({ signIn, now }) => {
    const admin = await signIn("team-a", "admin", { tenants: ["team-b"] });
    const page = await admin.get("/console/hosts/new");
    assert.equal(page.status, 200);
    const form = await page.text();
    const options = [...form.matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(options, ["team-a", "team-b"]);
    assert.match(form, /hx-post="\/console\/hosts\/new"/);
    assert.match(form, /name="_csrf" value="[^"]+"/);
    assert.match(form, /<button type="submit">Issue Token<\/button>/);

    // htmx: the fragment for the result area, no page frame.
    const res = await admin.post(
      "/console/hosts/new",
      { tenant_id: "team-b", name: "web-1", hostname_pattern: "web-*.example.test" },
      { "hx-request": "true", "x-csrf-token": admin.csrf },
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const html = await res.text();
    assert.doesNotMatch(html, /<html/);
    const command = textOf(html, "enroll-command")!;
    assert.match(command, /^aegis edge enroll [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const token = command.split(" ").at(-1)!;
    assert.equal(
      textOf(html, "enroll-command-stdin"),
      `printf '%s\\n' '${token}' | aegis edge enroll --token-file -`,
    );
    assert.equal(
      textOf(html, "install-linux"),
      `curl -fsSL '${BOOTSTRAP}/install.sh' | AEGIS_TOKEN='${token}' sh`,
    );
    assert.equal(textOf(html, "install-macos"), textOf(html, "install-linux"));
    assert.match(textOf(html, "install-windows")!, /^& \(\[scriptblock\]::Create\(\(iwr -useb '/);
    for (
      const id of ["enroll-command", "enroll-command-stdin", "install-linux", "install-windows"]
    ) {
      assert.match(html, new RegExp(`<button type="button"[^>]*data-copy="${id}"`));
    }

    // The QR code is inline SVG the CSP allows: no style attribute or element.
    const qr = html.match(
      /<div class="qr" role="img" aria-label="QR code of the enroll command">(<svg[\s\S]*?<\/svg>)/,
    );
    assert.ok(qr, "a QR code");
    assert.doesNotMatch(qr[1], /style/i);
    assert.match(qr[1], /<path fill="#000" d="M/);

    // The countdown runs to the token's own expiry: the configured lifetime from now.
    const expires = html.match(/<span class="countdown" data-expires="([^"]+)">([^<]*)</)!;
    const expiresAt = Date.parse(expires[1]);
    assert.ok(Math.abs(expiresAt - (now().getTime() + TTL_SECS * 1000)) <= 1000);
    assert.match(expires[2], /^1[45]:\d\d$/);
    assert.match(html, /data-expiry-scope/);
    // And polls for the host.
    assert.match(html, /hx-get="\/console\/hosts\/new\/status\/[0-9a-f-]{36}"/);
    assert.match(html, /hx-trigger="every 2s"/);
    assert.match(html, /Waiting for the host to enroll/);
    assert.match(html, /for hostnames matching <code>web-\*\.example\.test<\/code>/);

    // A plain form post (no script) gets the whole page with the same result.
    const plain = await admin.post("/console/hosts/new", {
      _csrf: admin.csrf,
      tenant_id: "team-a",
      name: "",
      hostname_pattern: "",
    });
    assert.equal(plain.status, 200);
    const full = await plain.text();
    assert.match(full, /<!DOCTYPE html>/);
    assert.match(textOf(full, "enroll-command")!, /^aegis edge enroll \S+$/);
    assert.match(full, /tenant <strong>team-a<\/strong>/);
  });
});

Deno.test(`[${TEST_DB_KIND}] Add Edge Host refuses a tenant the operator lacks, a bad pattern, and a missing CSRF token`, async () => {
  await withAddHost(async ({ signIn }) => {
    const admin = await signIn("team-a", "operator");
    const plain = await admin.post("/console/hosts/new", {
      _csrf: admin.csrf,
      tenant_id: "team-z",
      name: "x",
    });
    assert.equal(plain.status, 403);
    const page = await plain.text();
    assert.match(page, /you have no rights on tenant &quot;team-z&quot;/);
    assert.doesNotMatch(page, /enroll-command/);
    // The form comes back with what was typed.
    assert.match(page, /name="name" value="x"/);

    const htmx = await admin.post("/console/hosts/new", { tenant_id: "team-z" }, {
      "hx-request": "true",
      "x-csrf-token": admin.csrf,
    });
    assert.equal(htmx.status, 403);
    assert.match(await htmx.text(), /class="error" role="alert"/);

    const pattern = await admin.post("/console/hosts/new", {
      _csrf: admin.csrf,
      tenant_id: "team-a",
      hostname_pattern: "bad pattern!",
    });
    assert.equal(pattern.status, 400);

    const long = await admin.post("/console/hosts/new", {
      _csrf: admin.csrf,
      tenant_id: "team-a",
      name: "n".repeat(129),
    });
    assert.equal(long.status, 400);

    const forged = await admin.post("/console/hosts/new", { tenant_id: "team-a" });
    assert.equal(forged.status, 403);
  });
});

Deno.test(`[${TEST_DB_KIND}] Add Edge Host: readonly sees a notice and no form, and issuing is refused`, async () => {
  await withAddHost(async ({ signIn }) => {
    const reader = await signIn("team-a", "readonly");
    const page = await (await reader.get("/console/hosts/new")).text();
    assert.match(page, /role &quot;readonly&quot; cannot add edge hosts/);
    const main = page.slice(page.indexOf("<main"));
    assert.doesNotMatch(main, /<form|hx-post|name="tenant_id"|Issue Token/);

    const plainForm: Record<string, string> = {};
    for (const headers of [plainForm, { "hx-request": "true", "x-csrf-token": reader.csrf }]) {
      const res = await reader.post(
        "/console/hosts/new",
        { _csrf: reader.csrf, tenant_id: "team-a", name: "x" },
        headers,
      );
      assert.equal(res.status, 403);
      assert.doesNotMatch(await res.text(), /aegis edge enroll/);
    }
  });
});

Deno.test(`[${TEST_DB_KIND}] Add Edge Host status: waiting, enrolled, Connected (then no more polling); expired; other tenants' tokens unknown`, async () => {
  await withAddHost(async ({ signIn, enrollment, daemons, setNow, now }) => {
    const admin = await signIn("team-a", "admin");
    const html = await (await admin.post(
      "/console/hosts/new",
      { tenant_id: "team-a", name: "web-1" },
      { "hx-request": "true", "x-csrf-token": admin.csrf },
    )).text();
    const jti = html.match(/\/console\/hosts\/new\/status\/([0-9a-f-]{36})/)![1];
    const token = textOf(html, "enroll-command")!.split(" ").at(-1)!;
    const status = async (browser = admin) => {
      const res = await browser.get(`/console/hosts/new/status/${jti}`, { "hx-request": "true" });
      assert.equal(res.status, 200);
      return await res.text();
    };

    let line = await status();
    assert.match(line, /Waiting for the host to enroll/);
    assert.match(line, /hx-trigger="every 2s"/);

    // Another tenant's operator learns nothing about the token.
    const stranger = await signIn("team-z", "admin");
    const foreign = await status(stranger);
    assert.match(foreign, /not known/);
    assert.doesNotMatch(foreign, /hx-trigger/);

    const enrolled = await enrollHost(enrollment, token);
    line = await status();
    assert.match(
      line,
      new RegExp(`Enrolled as <a href="/console/hosts/${enrolled.nodeId}">web-1</a>`),
    );
    assert.match(line, /waiting for it to connect/);
    assert.match(line, /hx-trigger="every 2s"/);

    // Its stream says Hello: Connected, a link to its page, and the polling stops.
    assert.equal(
      await daemons.markConnected(enrolled.nodeId, {
        relayId: "r1",
        remoteAddr: "192.0.2.7",
        capabilities: { os: "linux", arch: "x86_64", hostname: "web-1.example.test" },
        labels: {},
      }),
      true,
    );
    line = await status();
    assert.match(
      line,
      new RegExp(`<a href="/console/hosts/${enrolled.nodeId}">web-1</a> is Connected`),
    );
    assert.doesNotMatch(line, /hx-trigger|hx-get/);

    // A token nobody used: expired once its time is up, and the line stops polling.
    const unused = await (await admin.post(
      "/console/hosts/new",
      { tenant_id: "team-a" },
      { "hx-request": "true", "x-csrf-token": admin.csrf },
    )).text();
    const unusedJti = unused.match(/\/console\/hosts\/new\/status\/([0-9a-f-]{36})/)![1];
    setNow(new Date(now().getTime() + (TTL_SECS + 1) * 1000));
    const expired = await (await admin.get(`/console/hosts/new/status/${unusedJti}`)).text();
    assert.match(expired, /The token expired unused/);
    assert.doesNotMatch(expired, /hx-trigger/);

    // Not a token id at all: refused before any query.
    assert.equal((await admin.get("/console/hosts/new/status/'%20OR%201=1")).status, 400);
  });
});
