import assert from "node:assert/strict";
import { parseControllerConfig } from "./config.ts";
import { isLoopbackHost, jwksUrlProblem, trustedIssuers } from "./auth_config.ts";

const parse = (yaml: string) => parseControllerConfig(yaml, "test.yaml", {});

Deno.test("auth config refuses an operator JWKS without issuer or audience, naming the key", () => {
  assert.throws(
    () =>
      parse(
        "auth:\n  operator_jwks_url: https://idp.example/jwks\n  operator_audience: aegis\n",
      ),
    (e: Error) => e.message.includes("operator_issuer"),
  );
  assert.throws(
    () => parse("auth:\n  operator_jwks_url: https://idp.example/jwks\n  operator_issuer: idp\n"),
    (e: Error) => e.message.includes("operator_audience"),
  );
  assert.throws(
    () => parse("auth:\n  issuers:\n    - issuer: idp\n      jwks_url: https://idp.example/j\n"),
    (e: Error) => e.message.includes("audience"),
  );
});

Deno.test("auth config refuses plain-http JWKS URLs except on loopback", () => {
  const yaml = (url: string) =>
    `auth:\n  issuers:\n    - issuer: idp\n      audience: aegis\n      jwks_url: "${url}"\n`;
  assert.throws(() => parse(yaml("http://idp.example/jwks")), /https/);
  assert.throws(() => parse(yaml("ftp://idp.example/jwks")), /https/);
  assert.throws(
    () => parse("auth:\n  operator_jwks_url: http://10.0.0.5/jwks\n  operator_issuer: i\n"),
    /https/,
  );
  for (const url of ["https://idp.example/jwks", "http://127.0.0.1:8080/j", "http://[::1]:1/j"]) {
    assert.equal(trustedIssuers(parse(yaml(url)).auth)[0].jwks_url, url);
  }
});

Deno.test("isLoopbackHost() knows 127.0.0.0/8, ::1 and localhost, and nothing else", () => {
  for (const host of ["127.0.0.1", "127.8.9.10", "[::1]", "::1", "localhost", "LOCALHOST"]) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ["128.0.0.1", "127.0.0.1.evil.example", "10.0.0.1", "::2", "localhost.com"]) {
    assert.equal(isLoopbackHost(host), false, host);
  }
  assert.equal(jwksUrlProblem("not a url"), "is not a URL");
});

Deno.test("auth config pins algorithms: asymmetric only, RS256/EdDSA/ES256 by default", () => {
  const base = "auth:\n  issuers:\n    - issuer: idp\n      audience: aegis\n" +
    "      jwks_url: https://idp.example/jwks\n";
  assert.deepEqual(trustedIssuers(parse(base).auth)[0].algorithms, ["RS256", "EdDSA", "ES256"]);
  assert.throws(() => parse(base + "      algorithms: [HS256]\n"), /algorithms/);
  assert.throws(() => parse(base + "      algorithms: [none]\n"), /algorithms/);
  assert.throws(() => parse(base + "      algorithms: []\n"), /algorithms/);
});

Deno.test("auth config migrates the operator_* keys into the issuer list and refuses clashes", () => {
  const legacy = parse(
    "auth:\n  operator_jwks_url: https://idp.example/jwks\n  operator_issuer: idp\n" +
      "  operator_audience: aegis\n",
  );
  assert.deepEqual(
    trustedIssuers(legacy.auth).map((i) => [i.issuer, i.audience, i.kind, i.algorithms.length]),
    [["idp", "aegis", "operator", 3]],
  );
  assert.deepEqual(trustedIssuers(parse("").auth), []);
  const twice = "auth:\n  operator_jwks_url: https://a.example/j\n  operator_issuer: idp\n" +
    "  operator_audience: x\n  issuers:\n    - issuer: idp\n      audience: y\n" +
    "      jwks_url: https://b.example/j\n";
  assert.throws(() => parse(twice), /listed twice/);
  const ours = "auth:\n  issuers:\n    - issuer: aegis-controller\n      audience: y\n" +
    "      jwks_url: https://b.example/j\n";
  assert.throws(() => parse(ours), /signs its own tokens/);
});

Deno.test("auth config: an issuer's oidc sign-in block, its defaults and its endpoint rules", () => {
  const yaml = (oidc: string[]) =>
    [
      "auth:",
      "  issuers:",
      "    - issuer: idp",
      "      audience: aegis-console",
      "      jwks_url: https://idp.example/jwks",
      "      oidc:",
      ...oidc.map((line) => `        ${line}`),
    ].join("\n") + "\n";
  const minimal = [
    "authorization_endpoint: https://idp.example/auth",
    "token_endpoint: https://idp.example/token",
    "client_id: aegis-console",
  ];
  const oidc = trustedIssuers(parse(yaml(minimal)).auth)[0].oidc!;
  assert.deepEqual(oidc.scopes, ["openid"]);
  assert.equal(oidc.operator_token, "id_token");
  assert.equal(oidc.client_secret_env, undefined);
  assert.equal(
    trustedIssuers(
      parse(
        "auth:\n  issuers:\n    - issuer: idp\n      audience: a\n" +
          "      jwks_url: https://idp.example/jwks\n",
      ).auth,
    )[0].oidc,
    undefined,
  );
  // Loopback may be plain http (tests), nothing else may.
  const local = [
    "authorization_endpoint: http://127.0.0.1:9/auth",
    "token_endpoint: http://[::1]:9/token",
    "client_id: c",
  ];
  assert.equal(trustedIssuers(parse(yaml(local)).auth)[0].oidc!.client_id, "c");
  assert.throws(
    () => parse(yaml([...minimal.slice(0, 1), "token_endpoint: http://idp.example/t", minimal[2]])),
    /https/,
  );
  assert.throws(
    () => parse(yaml(["authorization_endpoint: http://10.1.1.1/a", ...minimal.slice(1)])),
    /https/,
  );
  // The secret is named, never written into the file.
  assert.equal(
    trustedIssuers(parse(yaml([...minimal, "client_secret_env: IDP_SECRET"])).auth)[0].oidc!
      .client_secret_env,
    "IDP_SECRET",
  );
  assert.throws(() => parse(yaml([...minimal, "client_secret: hunter2"])), /client_secret/);
  assert.throws(() => parse(yaml([...minimal, "client_secret_env: 'not a name'"])));
  // An id_token needs the openid scope; an access_token does not.
  assert.throws(() => parse(yaml([...minimal, "scopes: [aegis]"])), /openid/);
  const access = trustedIssuers(
    parse(yaml([...minimal, "scopes: [aegis]", "operator_token: access_token"])).auth,
  )[0].oidc!;
  assert.equal(access.operator_token, "access_token");
  assert.throws(() => parse(yaml([...minimal, "operator_token: refresh_token"])));
});
