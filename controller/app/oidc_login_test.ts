// The protocol pieces of OIDC console sign-in that need no provider: the PKCE S256 challenge
// (RFC 7636's own test vector), what the authorization redirect carries, and the sealed sign-in
// cookie, whose state is good once, for ten minutes, in the browser it was given to.
import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { TEST_DB_KIND, testDatabase } from "../../tests/support/db.ts";
import { AuthSchema, trustedIssuers } from "../auth_config.ts";
import { ConsoleSessions } from "./console_sessions.ts";
import {
  deriveOidcStateKey,
  OIDC_LOGIN_TTL_SECS,
  OidcLogin,
  oidcProviders,
  pkceChallenge,
} from "./oidc_login.ts";
import { loadOrCreateSigningKey } from "./signing_key.ts";
import { TokenAuthority } from "./tokens.ts";
import type { Queryable } from "../store/db.ts";

const REDIRECT = "https://console.example/console/login/oidc/callback";

const auth = (clientSecretEnv?: string) =>
  AuthSchema.parse({
    issuers: [
      { issuer: "https://plain.example", audience: "aegis", jwks_url: "https://plain.example/j" },
      {
        issuer: "https://idp.example/realms/aegis",
        audience: "aegis-console",
        jwks_url: "https://idp.example/jwks",
        oidc: {
          authorization_endpoint: "https://idp.example/auth?kc_idp_hint=corp",
          token_endpoint: "https://idp.example/token",
          client_id: "aegis-console",
          display_name: "Corp SSO",
          ...(clientSecretEnv ? { client_secret_env: clientSecretEnv } : {}),
        },
      },
    ],
  });

async function withLogin(
  fn: (login: OidcLogin, clock: { now: Date }, db: Queryable) => Promise<void>,
): Promise<void> {
  const store = await testDatabase();
  const dir = await Deno.makeTempDir();
  try {
    const db = await store.open();
    const key = await loadOrCreateSigningKey(`${dir}/key.jwk`);
    const clock = { now: new Date("2026-01-01T00:00:00Z") };
    const now = () => clock.now;
    const sessions = new ConsoleSessions(db, new TokenAuthority(key, "aegis-controller", now), now);
    const login = new OidcLogin(
      oidcProviders(trustedIssuers(auth())),
      deriveOidcStateKey(key.challengeKey),
      db,
      sessions,
      now,
    );
    await fn(login, clock, db);
  } finally {
    await store.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

const refused = (pattern: RegExp) => (error: unknown) =>
  error instanceof AegisError && error.code === "UNAUTHENTICATED" && pattern.test(error.message);

Deno.test("PKCE S256 matches RFC 7636 appendix B", () => {
  assert.equal(
    pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  );
});

Deno.test("only issuers with an oidc block are offered; a client secret must be set", () => {
  const providers = oidcProviders(trustedIssuers(auth()), () => undefined);
  assert.deepEqual(providers.map((p) => [p.index, p.issuer, p.name, p.config.scopes]), [
    [0, "https://idp.example/realms/aegis", "Corp SSO", ["openid"]],
  ]);
  assert.equal(providers[0].config.operator_token, "id_token");
  const env = (name: string) => name === "CORP_SECRET" ? "s3cret" : undefined;
  assert.equal(oidcProviders(trustedIssuers(auth("CORP_SECRET")), env)[0].clientSecret, "s3cret");
  assert.throws(
    () => oidcProviders(trustedIssuers(auth("MISSING_SECRET")), env),
    (e) =>
      e instanceof AegisError && e.code === "CONFIG_INVALID" && /MISSING_SECRET/.test(e.message),
  );
});

Deno.test(`[${TEST_DB_KIND}] the authorization redirect carries state, nonce and the PKCE challenge`, async () => {
  await withLogin(async (login) => {
    const { url, cookie } = login.begin(0, REDIRECT, "/console/hosts");
    const sent = new URL(url);
    assert.equal(sent.origin + sent.pathname, "https://idp.example/auth");
    const q = Object.fromEntries(sent.searchParams);
    // The endpoint's own query parameters stay.
    assert.equal(q.kc_idp_hint, "corp");
    assert.equal(q.response_type, "code");
    assert.equal(q.client_id, "aegis-console");
    assert.equal(q.redirect_uri, REDIRECT);
    assert.equal(q.scope, "openid");
    assert.equal(q.code_challenge_method, "S256");
    assert.match(q.state, /^[A-Za-z0-9_-]{43}$/);
    assert.match(q.nonce, /^[A-Za-z0-9_-]{43}$/);
    // Nothing secret in the URL: the verifier is only in the sealed cookie.
    assert.ok(!url.includes(cookie.split(".")[0]));
    const pending = await login.redeemState(cookie, q.state);
    assert.match(pending.verifier, /^[A-Za-z0-9._~-]{43,128}$/);
    assert.equal(q.code_challenge, pkceChallenge(pending.verifier));
    assert.equal(pending.nonce, q.nonce);
    assert.equal(pending.next, "/console/hosts");
    assert.equal(pending.redirectUri, REDIRECT);
    // Two sign-ins never share a state, nonce or verifier.
    const other = new URL(login.begin(0, REDIRECT, "/console/").url).searchParams;
    assert.notEqual(other.get("state"), q.state);
    assert.notEqual(other.get("nonce"), q.nonce);
    assert.notEqual(other.get("code_challenge"), q.code_challenge);
    assert.throws(() => login.begin(1, REDIRECT, "/console/"), /no such sign-in provider/);
  });
});

Deno.test(`[${TEST_DB_KIND}] a sign-in state is good once`, async () => {
  await withLogin(async (login) => {
    const { url, cookie } = login.begin(0, REDIRECT, "/console/");
    const state = new URL(url).searchParams.get("state")!;
    await login.redeemState(cookie, state);
    await assert.rejects(login.redeemState(cookie, state), refused(/already used/));
  });
});

Deno.test(`[${TEST_DB_KIND}] a sign-in state expires after ten minutes`, async () => {
  await withLogin(async (login, clock) => {
    const start = clock.now;
    const first = login.begin(0, REDIRECT, "/console/");
    const second = login.begin(0, REDIRECT, "/console/");
    const stateOf = (url: string) => new URL(url).searchParams.get("state")!;
    clock.now = new Date(start.getTime() + (OIDC_LOGIN_TTL_SECS - 1) * 1000);
    await login.redeemState(first.cookie, stateOf(first.url));
    clock.now = new Date(start.getTime() + OIDC_LOGIN_TTL_SECS * 1000);
    await assert.rejects(
      login.redeemState(second.cookie, stateOf(second.url)),
      refused(/not started in this browser, or it expired/),
    );
  });
});

Deno.test(`[${TEST_DB_KIND}] a state from another browser, or a forged cookie, is refused`, async () => {
  await withLogin(async (login) => {
    const mine = login.begin(0, REDIRECT, "/console/");
    const theirs = login.begin(0, REDIRECT, "/console/");
    const theirState = new URL(theirs.url).searchParams.get("state")!;
    // An attacker's own answer (state and code from their sign-in) pushed into my browser.
    await assert.rejects(login.redeemState(mine.cookie, theirState), refused(/does not belong/));
    await assert.rejects(login.redeemState(mine.cookie, undefined), refused(/does not belong/));
    await assert.rejects(login.redeemState(undefined, theirState), refused(/not started/));
    // A cookie whose contents were changed (say, to another next or verifier) is not ours.
    const [payload, mac] = mine.cookie.split(".");
    const json = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
    const forged = btoa(JSON.stringify({ ...json, next: "/console/evil" }))
      .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    await assert.rejects(login.redeemState(`${forged}.${mac}`, json.state), refused(/not started/));
    // The untouched cookie still works: nothing above spent it.
    await login.redeemState(mine.cookie, json.state);
  });
});
