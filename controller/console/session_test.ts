// Console sign-in, sessions and CSRF against an in-process controller on a real socket: what the
// cookie is, what the database keeps of it, what a change needs, and that a login link and a
// signed-out session are dead.
import assert from "node:assert/strict";
import { TEST_DB_KIND } from "../../tests/support/db.ts";
import { withInProcessController } from "../../tests/support/in_process_controller.ts";
import { CONSOLE_SESSIONS_PER_SUBJECT } from "../app/console_sessions.ts";
import { ASSETS } from "./assets.ts";
import { CONSOLE_CSP } from "./console.tsx";
import { safeNext } from "./session.ts";

const withController = (fn: Parameters<typeof withInProcessController>[1]) =>
  withInProcessController([], fn);

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = "application/x-www-form-urlencoded";

async function post(
  base: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
) {
  const response = await fetch(base + path, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": FORM, origin: base, ...headers },
    body,
  });
  return { response, text: await response.text() };
}

async function signIn(base: string, token: string): Promise<string> {
  const { response } = await post(base, "/console/login", form({ token }));
  assert.equal(response.status, 303);
  const cookie = response.headers.get("set-cookie")!;
  return cookie.split(";")[0];
}

async function page(base: string, path: string, cookie?: string) {
  const response = await fetch(base + path, {
    redirect: "manual",
    headers: cookie ? { cookie } : {},
  });
  return { response, text: await response.text() };
}

const csrfOf = (html: string) => html.match(/name="csrf-token" content="([^"]+)"/)![1];

Deno.test(`[${TEST_DB_KIND}] console sign-in: an HttpOnly SameSite=Strict cookie whose id the database never holds`, async () => {
  await withController(async (controller, base) => {
    const anonymous = await page(base, "/console/hosts?status=connected");
    assert.equal(anonymous.response.status, 303);
    assert.equal(
      anonymous.response.headers.get("location"),
      "/console/login?next=%2Fconsole%2Fhosts%3Fstatus%3Dconnected",
    );
    assert.equal(anonymous.response.headers.get("content-security-policy"), CONSOLE_CSP);

    const bad = await post(base, "/console/login", form({ token: "not-a-token" }));
    assert.equal(bad.response.status, 401);
    assert.equal(bad.response.headers.get("set-cookie"), null);

    const token = await controller.tokens.issueOperator({
      subject: "alice",
      tenantId: "team-a",
      role: "admin",
      ttlSecs: 3600,
    });
    // Login CSRF: a sign-in posted from another origin is refused before the token is read.
    const foreign = await post(base, "/console/login", form({ token }), { origin: "http://evil" });
    assert.equal(foreign.response.status, 403);

    const { response } = await post(
      base,
      "/console/login",
      form({ token, next: "/console/hosts?tag=web" }),
    );
    assert.equal(response.status, 303);
    assert.equal(response.headers.get("location"), "/console/hosts?tag=web");
    const setCookie = response.headers.get("set-cookie")!;
    assert.match(setCookie, /^aegis_console=[A-Za-z0-9_-]{43};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\/console/);
    const id = setCookie.split(";")[0].split("=")[1];
    const rows = await controller.db.query<{ id_hash: string }>(
      `SELECT id_hash FROM console_sessions`,
    );
    assert.equal(rows.length, 1);
    assert.notEqual(rows[0].id_hash, id);
    assert.ok(!JSON.stringify(rows).includes(id));

    const hosts = await page(base, "/console/hosts", `aegis_console=${id}`);
    assert.equal(hosts.response.status, 200);
    assert.match(hosts.text, /^<!DOCTYPE html>/);
    assert.match(hosts.text, /alice/);
    assert.doesNotMatch(hosts.text, /<script>|<script [^>]*>[^<]/, "an inline script");
  });
});

Deno.test(`[${TEST_DB_KIND}] console changes need the session's CSRF token and this origin; sign-out ends the session`, async () => {
  await withController(async (controller, base) => {
    const token = await controller.tokens.issueOperator({
      subject: "bob",
      tenantId: "team-a",
      role: "operator",
      ttlSecs: 3600,
    });
    const cookie = await signIn(base, token);
    const csrf = csrfOf((await page(base, "/console/hosts", cookie)).text);

    const noToken = await post(base, "/console/logout", "", { cookie });
    assert.equal(noToken.response.status, 403);
    const wrong = await post(base, "/console/logout", form({ _csrf: "x".repeat(43) }), { cookie });
    assert.equal(wrong.response.status, 403);
    const crossSite = await post(base, "/console/logout", form({ _csrf: csrf }), {
      cookie,
      origin: "https://evil.example",
    });
    assert.equal(crossSite.response.status, 403);
    const fetchMeta = await post(base, "/console/logout", form({ _csrf: csrf }), {
      cookie,
      "sec-fetch-site": "cross-site",
    });
    assert.equal(fetchMeta.response.status, 403);
    assert.equal((await page(base, "/console/hosts", cookie)).response.status, 200);

    const out = await post(base, "/console/logout", form({ _csrf: csrf }), { cookie });
    assert.equal(out.response.status, 303);
    assert.match(out.response.headers.get("set-cookie")!, /aegis_console=;/);
    // The old cookie is dead, wherever it was copied to.
    const after = await page(base, "/console/hosts", cookie);
    assert.equal(after.response.status, 303);
    assert.equal(
      (await controller.db.query(`SELECT 1 FROM console_sessions`)).length,
      0,
    );
  });
});

Deno.test(`[${TEST_DB_KIND}] a login link shows whom it signs in as, signs in once, and a scanner's GET spends nothing`, async () => {
  await withController(async (controller, base) => {
    const { token: link } = await controller.tokens.issueLoginLink({
      subject: "carol",
      tenantId: "team-a",
      role: "readonly",
      tenants: ["team-b"],
      ttlSecs: 900,
    });
    for (let i = 0; i < 2; i++) {
      const shown = await page(base, `/console/login?link=${link}`);
      assert.equal(shown.response.status, 200);
      assert.match(shown.text, /signs you in as <strong>carol<\/strong>/);
      assert.match(shown.text, /team-a, team-b/);
    }
    const first = await post(base, "/console/login/link", form({ link }));
    assert.equal(first.response.status, 303);
    // The link's 15 minutes bound when it may be used, not how long the session lasts (12 h).
    const expires = Date.parse(
      first.response.headers.get("set-cookie")!.match(/Expires=([^;]+)/)![1],
    );
    assert.ok(expires - Date.now() > 11 * 3600_000, "the session ends with the link");
    const cookie = first.response.headers.get("set-cookie")!.split(";")[0];
    const hosts = await page(base, "/console/hosts", cookie);
    assert.match(hosts.text, /carol/);
    assert.match(hosts.text, /readonly/);

    const second = await post(base, "/console/login/link", form({ link }));
    assert.equal(second.response.status, 401);
    assert.match(second.text, /this login link was already used/);
    assert.equal(second.response.headers.get("set-cookie"), null);
    assert.match((await page(base, `/console/login?link=${link}`)).text, /already used/);

    // An operator token is not a login link, nor the other way round.
    const operatorToken = await controller.tokens.issueOperator({
      subject: "dave",
      tenantId: "team-a",
      role: "admin",
      ttlSecs: 900,
    });
    const swapped = await post(base, "/console/login/link", form({ link: operatorToken }));
    assert.equal(swapped.response.status, 401);
    const { token: link2 } = await controller.tokens.issueLoginLink({
      subject: "erin",
      tenantId: "team-a",
      role: "admin",
      ttlSecs: 900,
    });
    const asToken = await post(base, "/console/login", form({ token: link2 }));
    assert.equal(asToken.response.status, 401);
  });
});

Deno.test(`[${TEST_DB_KIND}] one identity holds at most ${CONSOLE_SESSIONS_PER_SUBJECT} console sessions`, async () => {
  await withController(async (controller, base) => {
    const token = await controller.tokens.issueOperator({
      subject: "loop",
      tenantId: "team-a",
      role: "readonly",
      ttlSecs: 3600,
    });
    const cookies: string[] = [];
    for (let i = 0; i < CONSOLE_SESSIONS_PER_SUBJECT + 3; i++) {
      cookies.push(await signIn(base, token));
    }
    const [{ n }] = await controller.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM console_sessions WHERE claims->>'sub' = 'loop'`,
    );
    assert.equal(n, CONSOLE_SESSIONS_PER_SUBJECT);
    assert.equal((await page(base, "/console/hosts", cookies[0])).response.status, 303);
    assert.equal((await page(base, "/console/hosts", cookies.at(-1))).response.status, 200);

    // The same subject on another tenant is another identity: its sign-ins end none of these
    // (`token create` names every CLI admin "cli:admin", whatever the tenant).
    const other = await controller.tokens.issueOperator({
      subject: "loop",
      tenantId: "team-z",
      role: "readonly",
      ttlSecs: 3600,
    });
    for (let i = 0; i < CONSOLE_SESSIONS_PER_SUBJECT + 1; i++) await signIn(base, other);
    assert.equal((await page(base, "/console/hosts", cookies.at(-1))).response.status, 200);
  });
});

Deno.test(`[${TEST_DB_KIND}] forwarding headers from a peer that is no trusted proxy change nothing; control characters are refused`, async () => {
  await withController(async (controller, base) => {
    const token = await controller.tokens.issueOperator({
      subject: "mallory",
      tenantId: "team-a",
      role: "admin",
      ttlSecs: 3600,
    });
    // X-Forwarded-Proto from anyone does not make the cookie Secure (over plain http the
    // browser would then drop it), nor does X-Forwarded-Host move the origin to compare with.
    const login = await post(base, "/console/login", form({ token }), {
      "x-forwarded-proto": "https",
    });
    assert.equal(login.response.status, 303);
    assert.doesNotMatch(login.response.headers.get("set-cookie")!, /Secure/);
    const cookie = login.response.headers.get("set-cookie")!.split(";")[0];
    const csrf = csrfOf((await page(base, "/console/hosts", cookie)).text);
    const spoofed = await post(base, "/console/logout", form({ _csrf: csrf }), {
      cookie,
      origin: "https://evil.example",
      "x-forwarded-host": "evil.example",
    });
    assert.equal(spoofed.response.status, 403);

    // A next with a line break cannot split the Location header, nor leave a 500 behind.
    const crlf = await post(
      base,
      "/console/login",
      form({ token, next: "/console/hosts\r\nSet-Cookie: x=y" }),
    );
    assert.equal(crlf.response.status, 303);
    assert.equal(crlf.response.headers.get("location"), "/console/");

    // NUL and other controls in a path or query are refused before any route or query sees them
    // (PostgreSQL would answer a 500 with its own words, and a log line could be forged).
    for (
      const path of ["/console/hosts/%00", "/console/hosts?q=a%00b", "/console/hosts/x%0aforged"]
    ) {
      const got = await page(base, path, cookie);
      assert.equal(got.response.status, 400, path);
      assert.match(got.text, /control character/);
    }
    const rest = await fetch(`${base}/v1/edge/hosts/n-%00`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(rest.status, 400);
    assert.equal((await rest.json()).error.code, "INVALID_ARGUMENT");
  });
});

Deno.test("safeNext() keeps a sign-in inside the console", () => {
  assert.equal(safeNext("/console/hosts?tag=a"), "/console/hosts?tag=a");
  for (
    const bad of [
      "//evil.example/",
      "https://evil.example/",
      "/v1/edge/hosts",
      "/console\\..",
      "/console/hosts\r\nSet-Cookie: a=b",
      "/console/\u0000",
      undefined,
    ]
  ) {
    assert.equal(safeNext(bad), "/console/");
  }
});

Deno.test(`[${TEST_DB_KIND}] console assets are embedded, hashed and cached for good`, async () => {
  await withController(async (_controller, base) => {
    for (const asset of Object.values(ASSETS)) {
      const response = await fetch(base + asset.path);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assert.equal(await response.text(), asset.body);
    }
    const missing = await fetch(`${base}/console/assets/nope-000000000000.js`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
});
