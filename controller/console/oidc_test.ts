// "Sign in with <provider>" end to end: an in-process controller on a real socket trusts the fake
// identity provider (a real loopback HTTP server: /authorize auto-approves, /token checks the
// code, client, redirect_uri and PKCE verifier, tokens are verified against its JWKS). Each step
// is what a browser does: follow the redirects, carry the cookies.
import assert from "node:assert/strict";
import type { RunningController } from "../server/controller.ts";
import { TEST_DB_KIND } from "../../tests/support/db.ts";
import { withInProcessController } from "../../tests/support/in_process_controller.ts";
import { FakeIdp, type FakeOidcClient, idpKey } from "../../tests/security/fake_idp.ts";
import { pkceChallenge } from "../app/oidc_login.ts";

const ISSUER = "https://idp.test/realms/aegis";
const CLIENT_ID = "aegis-console";
const SECRET_ENV = "AEGIS_OIDC_TEST_CLIENT_SECRET";
const SECRET = "client-secret-for-tests";
const IDENTITY = { sub: "alice@idp", tenant_id: "team-a", aegis_role: "operator" };

async function withIdpController(
  oidcLines: string[],
  fn: (base: string, idp: FakeIdp & { oidc: FakeOidcClient }, c: RunningController) => Promise<
    void
  >,
): Promise<void> {
  const idp = new FakeIdp();
  const key = await idpKey("ES256");
  idp.keys = [key];
  idp.oidc = {
    issuer: ISSUER,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    key,
    audience: CLIENT_ID,
    identity: IDENTITY,
  };
  Deno.env.set(SECRET_ENV, SECRET);
  try {
    await withInProcessController([
      "auth:",
      "  issuers:",
      `    - issuer: "${ISSUER}"`,
      `      audience: "${CLIENT_ID}"`,
      `      jwks_url: "${idp.jwksUrl}"`,
      "      algorithms: [ES256]",
      "      oidc:",
      `        authorization_endpoint: "${idp.authorizationEndpoint}"`,
      `        token_endpoint: "${idp.tokenEndpoint}"`,
      `        client_id: "${CLIENT_ID}"`,
      `        client_secret_env: ${SECRET_ENV}`,
      "        display_name: Fake SSO",
      ...oidcLines.map((line) => `        ${line}`),
    ], (controller, base) => fn(base, idp as FakeIdp & { oidc: FakeOidcClient }, controller));
  } finally {
    await idp.close();
    Deno.env.delete(SECRET_ENV);
  }
}

async function get(url: string, cookie?: string) {
  const response = await fetch(url, { redirect: "manual", headers: cookie ? { cookie } : {} });
  return { response, text: await response.text() };
}

/** The name=value of the Set-Cookie named `name`, with its attributes. */
function setCookie(response: Response, name: string): { pair: string; attrs: string } {
  const line = response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  assert.ok(line, `no ${name} cookie in ${JSON.stringify(response.headers.getSetCookie())}`);
  return { pair: line.split(";")[0], attrs: line };
}

/** Sign-in page → provider: the authorization URL and this browser's sign-in cookie. */
async function begin(base: string, next = "/console/hosts") {
  const { response } = await get(
    `${base}/console/login/oidc/0?next=${encodeURIComponent(next)}`,
  );
  assert.equal(response.status, 303);
  return {
    authorize: new URL(response.headers.get("location")!),
    cookie: setCookie(response, "aegis_oidc"),
  };
}

/** The provider approves: where it sends the browser back to. */
async function approve(authorize: URL): Promise<URL> {
  const { response } = await get(authorize.toString());
  assert.equal(response.status, 302);
  return new URL(response.headers.get("location")!);
}

Deno.test(`[${TEST_DB_KIND}] OIDC sign-in: code + PKCE at the fake provider yields a console session`, async () => {
  await withIdpController(["scopes: [openid, profile]"], async (base, idp) => {
    const login = await get(`${base}/console/login`);
    assert.match(
      login.text,
      /href="\/console\/login\/oidc\/0\?next=%2Fconsole%2F">\s*Sign in with Fake SSO/,
    );

    const { authorize, cookie } = await begin(base);
    assert.equal(authorize.origin + authorize.pathname, idp.authorizationEndpoint);
    const q = Object.fromEntries(authorize.searchParams);
    assert.equal(q.response_type, "code");
    assert.equal(q.client_id, CLIENT_ID);
    assert.equal(q.redirect_uri, `${base}/console/login/oidc/callback`);
    assert.equal(q.scope, "openid profile");
    assert.equal(q.code_challenge_method, "S256");
    assert.match(q.code_challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.state, /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.nonce, /^[A-Za-z0-9_-]{43}$/);
    assert.match(cookie.attrs, /HttpOnly/i);
    assert.match(cookie.attrs, /SameSite=Lax/i);
    assert.match(cookie.attrs, /Path=\/console\/login\/oidc(;|$)/);

    const callback = await approve(authorize);
    assert.equal(callback.origin + callback.pathname, q.redirect_uri);
    assert.equal(callback.searchParams.get("state"), q.state);
    const done = await get(callback.toString(), cookie.pair);
    assert.equal(done.response.status, 303, done.text);
    assert.equal(done.response.headers.get("location"), "/console/hosts");
    const session = setCookie(done.response, "aegis_console");
    assert.match(session.attrs, /HttpOnly/i);
    assert.match(session.attrs, /SameSite=Strict/i);
    // The one-attempt cookie is gone.
    assert.match(
      setCookie(done.response, "aegis_oidc").attrs,
      /Max-Age=0|expires=Thu, 01 Jan 1970/i,
    );

    // The code exchange was the confidential client's, with the verifier of that challenge.
    const exchange = idp.tokenRequests.at(-1)!;
    assert.equal(exchange.get("grant_type"), "authorization_code");
    assert.equal(exchange.get("redirect_uri"), q.redirect_uri);
    assert.equal(pkceChallenge(exchange.get("code_verifier")!), q.code_challenge);

    const hosts = await get(`${base}/console/hosts`, session.pair);
    assert.equal(hosts.response.status, 200, hosts.text);
    assert.match(hosts.text, /alice@idp/);

    // The same answer again (a replayed or leaked callback URL) makes no second session.
    const replay = await get(callback.toString(), cookie.pair);
    assert.equal(replay.response.status, 401);
    assert.match(replay.text, /already used/);
    assert.equal(
      replay.response.headers.getSetCookie().some((c) => c.startsWith("aegis_console=")),
      false,
    );
  });
});

Deno.test(`[${TEST_DB_KIND}] OIDC sign-in: a wrong state, a code for another verifier, a provider error and bad claims are refused`, async () => {
  await withIdpController(["scopes: [openid, profile]"], async (base, idp) => {
    const refused = async (url: URL | string, cookie: string | undefined, message: RegExp) => {
      const { response, text } = await get(url.toString(), cookie);
      assert.equal(response.status, 401, text);
      assert.match(text, message);
      assert.match(text, /Sign in with Fake SSO/);
      assert.equal(
        response.headers.getSetCookie().some((c) => c.startsWith("aegis_console=")),
        false,
      );
    };

    // Wrong state: this browser's cookie with another sign-in's answer.
    const mine = await begin(base);
    const theirs = await begin(base);
    const theirAnswer = await approve(theirs.authorize);
    await refused(theirAnswer, mine.cookie.pair, /does not belong to this browser/);
    // No cookie at all (the answer opened in another browser).
    await refused(theirAnswer, undefined, /not started in this browser/);

    // A code issued for another PKCE challenge (injected into this sign-in): the provider refuses
    // the exchange, since this browser's verifier does not match that code's challenge.
    const victim = await begin(base);
    const attacker = await begin(base);
    const stolenCode = (await approve(attacker.authorize)).searchParams.get("code")!;
    const injected = new URL(`${base}/console/login/oidc/callback`);
    injected.searchParams.set("code", stolenCode);
    injected.searchParams.set("state", victim.authorize.searchParams.get("state")!);
    await refused(
      injected,
      victim.cookie.pair,
      /refused to exchange the sign-in code \(invalid_grant\)/,
    );

    // The provider says no.
    idp.oidc.error = "access_denied";
    const denied = await begin(base);
    const deniedAnswer = await approve(denied.authorize);
    assert.equal(deniedAnswer.searchParams.get("error"), "access_denied");
    await refused(deniedAnswer, denied.cookie.pair, /did not sign you in \(access_denied\)/);
    // The provider's words are shown only for the sign-in this browser started.
    await refused(deniedAnswer, mine.cookie.pair, /does not belong to this browser/);
    idp.oidc.error = undefined;

    // An identity without the operator claims gets no session.
    idp.oidc.identity = { sub: "bob@idp", tenant_id: "team-a", aegis_role: undefined };
    const noRole = await begin(base);
    await refused(await approve(noRole.authorize), noRole.cookie.pair, /aegis_role/);

    // An id_token minted for another sign-in (its nonce) is not this one's.
    idp.oidc.identity = { ...IDENTITY, nonce: "someone-elses-nonce" };
    const wrongNonce = await begin(base);
    await refused(await approve(wrongNonce.authorize), wrongNonce.cookie.pair, /nonce/);

    // A provider index that does not exist.
    const missing = await get(`${base}/console/login/oidc/7`);
    assert.equal(missing.response.status, 404);
  });
});

Deno.test(`[${TEST_DB_KIND}] OIDC sign-in: the operator claims may ride in the access_token`, async () => {
  await withIdpController(
    ["scopes: [aegis]", "operator_token: access_token"],
    async (base, idp) => {
      idp.oidc.identity = { ...IDENTITY, sub: "carol@idp", aegis_role: "readonly" };
      const { authorize, cookie } = await begin(base, "/console/hosts?status=connected");
      assert.equal(authorize.searchParams.get("scope"), "aegis");
      const done = await get((await approve(authorize)).toString(), cookie.pair);
      assert.equal(done.response.status, 303, done.text);
      assert.equal(done.response.headers.get("location"), "/console/hosts?status=connected");
      const hosts = await get(
        `${base}/console/hosts`,
        setCookie(done.response, "aegis_console").pair,
      );
      assert.equal(hosts.response.status, 200, hosts.text);
      assert.match(hosts.text, /carol@idp/);
    },
  );
});
