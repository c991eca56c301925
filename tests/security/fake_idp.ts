// A stand-in external identity provider for tests: a real HTTP server on loopback serving a JWKS
// whose keys the test can rotate, and a signer for tokens in that provider's name.
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

// Deno.serve takes only this realm's own Response; an in-process controller's @hono/node-server
// swaps globalThis.Response for its own class once it listens, so keep the original.
const NativeResponse = globalThis.Response;

export interface IdpKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: Record<string, unknown>;
}

export async function idpKey(alg: string, kid: string = crypto.randomUUID()): Promise<IdpKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, jwk };
}

/**
 * The provider's side of an OIDC authorization code + PKCE sign-in: /authorize approves at once
 * (no login page) for `identity`, or answers `error` when one is set; /token checks the code, the
 * client, the redirect_uri and the PKCE S256 verifier, and returns tokens signed with `key`.
 */
export interface FakeOidcClient {
  issuer: string;
  clientId: string;
  /** Required (client_secret_basic or _post) when set. */
  clientSecret?: string;
  key: IdpKey;
  /** The id_token's and access_token's `aud`. */
  audience: string;
  /** Claims of whoever "signs in": sub, tenant_id, aegis_role... */
  identity: JWTPayload;
  /** When set, /authorize redirects back with this error instead of a code. */
  error?: string;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce?: string;
  scope: string;
}

export class FakeIdp {
  keys: IdpKey[] = [];
  fetches = 0;
  oidc?: FakeOidcClient;
  /** Every /token request's form, for tests to look at. */
  readonly tokenRequests: URLSearchParams[] = [];
  readonly #codes = new Map<string, IssuedCode>();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const path = new URL(request.url).pathname;
        if (path === "/authorize" && request.method === "GET") return this.#authorize(request);
        if (path === "/token" && request.method === "POST") return await this.#token(request);
        this.fetches++;
        return NativeResponse.json({ keys: this.keys.map((k) => k.jwk) });
      },
    );
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/jwks`;
  }

  get authorizationEndpoint(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/authorize`;
  }

  get tokenEndpoint(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/token`;
  }

  #authorize(request: Request): Response {
    const q = new URL(request.url).searchParams;
    const client = this.oidc;
    const redirectUri = q.get("redirect_uri") ?? "";
    // Before any redirect: a client or redirect_uri it does not know gets a page, never a redirect.
    if (!client || q.get("client_id") !== client.clientId || !redirectUri.startsWith("http")) {
      return new NativeResponse("unknown client", { status: 400 });
    }
    const back = new URL(redirectUri);
    const state = q.get("state");
    if (state !== null) back.searchParams.set("state", state);
    const challenge = q.get("code_challenge") ?? "";
    if (client.error) {
      back.searchParams.set("error", client.error);
    } else if (
      q.get("response_type") !== "code" || q.get("code_challenge_method") !== "S256" ||
      !/^[A-Za-z0-9_-]{43}$/.test(challenge)
    ) {
      back.searchParams.set("error", "invalid_request");
    } else {
      const code = crypto.randomUUID();
      this.#codes.set(code, {
        clientId: client.clientId,
        redirectUri,
        challenge,
        nonce: q.get("nonce") ?? undefined,
        scope: q.get("scope") ?? "",
      });
      back.searchParams.set("code", code);
    }
    return new NativeResponse(null, { status: 302, headers: { location: back.toString() } });
  }

  async #token(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    this.tokenRequests.push(form);
    const refuse = (error: string, status = 400) => NativeResponse.json({ error }, { status });
    const client = this.oidc;
    if (!client) return refuse("invalid_client", 401);
    // client_secret_basic, or client_id (+ client_secret) in the form.
    let clientId = form.get("client_id");
    let secret = form.get("client_secret");
    const basic = request.headers.get("authorization")?.match(/^Basic (.+)$/);
    if (basic) {
      const [id, pass] = atob(basic[1]).split(":").map(decodeURIComponent);
      if (clientId !== null && clientId !== id) return refuse("invalid_client", 401);
      clientId = id;
      secret = pass;
    }
    if (clientId !== client.clientId) return refuse("invalid_client", 401);
    if (client.clientSecret !== undefined && secret !== client.clientSecret) {
      return refuse("invalid_client", 401);
    }
    if (form.get("grant_type") !== "authorization_code") return refuse("unsupported_grant_type");
    const code = form.get("code") ?? "";
    const issued = this.#codes.get(code);
    // A code is good once, whatever happens next.
    this.#codes.delete(code);
    if (!issued || issued.clientId !== clientId) return refuse("invalid_grant");
    if (form.get("redirect_uri") !== issued.redirectUri) return refuse("invalid_grant");
    const verifier = form.get("code_verifier") ?? "";
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
    );
    const challenge = btoa(String.fromCharCode(...digest)).replace(/=+$/, "")
      .replace(/\+/g, "-").replace(/\//g, "_");
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || challenge !== issued.challenge) {
      return refuse("invalid_grant");
    }
    const base = { iss: client.issuer, aud: client.audience };
    return NativeResponse.json({
      token_type: "Bearer",
      expires_in: 300,
      scope: issued.scope,
      access_token: await this.sign(client.key, { ...base, ...client.identity }),
      ...(issued.scope.split(" ").includes("openid")
        ? {
          // The identity comes last: a test can make it carry a wrong nonce.
          id_token: await this.sign(client.key, {
            ...base,
            ...(issued.nonce ? { nonce: issued.nonce } : {}),
            ...client.identity,
          }),
        }
        : {}),
    }, { headers: { "cache-control": "no-store" } });
  }

  /** A token signed by `key` (in the JWKS or not), with claims an operator token needs. */
  async sign(key: IdpKey, claims: JWTPayload, alg = key.alg): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return await new SignJWT({
      sub: "alice@idp",
      tenant_id: "team-a",
      aegis_role: "admin",
      iat: now,
      exp: now + 300,
      ...claims,
    }).setProtectedHeader({ alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

/** An unsigned token (`alg: none`), which no verifier may ever accept. */
export function unsignedToken(claims: JWTPayload): string {
  const b64 = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: "none", typ: "JWT" })}.${
    b64({ sub: "mallory", tenant_id: "team-a", aegis_role: "admin", exp: now + 300, ...claims })
  }.`;
}
