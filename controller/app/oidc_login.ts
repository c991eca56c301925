// Web console sign-in through an external identity provider: OAuth 2.0 authorization code
// (RFC 6749) with PKCE S256 (RFC 7636) and the OIDC nonce. What the browser must bring back
// (state, nonce, PKCE verifier, redirect_uri, where to go next) travels in a short-lived cookie
// sealed with an HMAC key derived from the controller's signing key, so every relay sharing the
// key can finish a sign-in another relay started; the state is spent in the database on the first
// callback (console_login_links, the table of spent one-time sign-ins), so a replayed callback is
// refused on every relay. The token the provider returns is trusted only after the same check a
// pasted operator token goes through (TokenAuthority.verifyOperator via ConsoleSessions).
import { createHash, createHmac, hkdfSync } from "node:crypto";
import { decodeJwt } from "jose";
import { AegisError } from "../../shared/errors.ts";
import {
  constantTimeEqual,
  fromBase64Url,
  toBase64Url,
  utf8,
} from "../../shared/crypto/encoding.ts";
import type { OidcLoginConfig, TrustedIssuer } from "../auth_config.ts";
import type { Queryable } from "../store/db.ts";
import type { Clock } from "./clock.ts";
import type { ConsoleSessions, NewConsoleSession } from "./console_sessions.ts";

/** A sign-in must come back from the provider within this long. */
export const OIDC_LOGIN_TTL_SECS = 600;
/** A token response is a few tokens; anything much larger is not one we want to parse. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
const TOKEN_TIMEOUT_MS = 10_000;
/** Prefix of a spent state in console_login_links (whose other rows are login-link jtis). */
const SPENT_PREFIX = "oidc-state:";
const SEAL_PURPOSE = "aegis console oidc login v1";

/** One provider the sign-in page offers, with its secret resolved from the environment. */
export interface OidcProvider {
  /** Its position among the offered providers: the :index of /console/login/oidc/:index. */
  index: number;
  issuer: string;
  name: string;
  config: OidcLoginConfig;
  clientSecret?: string;
}

/** What the browser carries from the redirect to the callback, sealed. */
export interface OidcPending {
  provider: number;
  state: string;
  nonce: string;
  verifier: string;
  redirectUri: string;
  next: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** The providers of the trusted issuers that have an `oidc` block; a missing secret is an error. */
export function oidcProviders(
  issuers: readonly TrustedIssuer[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): OidcProvider[] {
  const providers: OidcProvider[] = [];
  for (const issuer of issuers) {
    const config = issuer.oidc;
    if (!config) continue;
    let clientSecret: string | undefined;
    if (config.client_secret_env) {
      clientSecret = env(config.client_secret_env);
      // Refused at start-up: a sign-in button that can only fail is worse than none.
      if (!clientSecret) {
        throw new AegisError(
          "CONFIG_INVALID",
          `auth.issuers "${issuer.issuer}": oidc.client_secret_env names ` +
            `${config.client_secret_env}, which is not set`,
        );
      }
    }
    providers.push({
      index: providers.length,
      issuer: issuer.issuer,
      name: config.display_name ?? issuer.issuer,
      config,
      clientSecret,
    });
  }
  return providers;
}

/** The MAC key of sign-in cookies, from the signing key's derived secret (a role of its own). */
export function deriveOidcStateKey(secret: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", secret, new Uint8Array(), SEAL_PURPOSE, 32));
}

/** RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
export function pkceChallenge(verifier: string): string {
  return toBase64Url(createHash("sha256").update(verifier, "ascii").digest());
}

const random43 = () => toBase64Url(crypto.getRandomValues(new Uint8Array(32)));

const attemptLost = () =>
  new AegisError("UNAUTHENTICATED", "this sign-in was not started in this browser, or it expired", {
    hint: "Start the sign-in again from the console's sign-in page.",
  });

export class OidcLogin {
  readonly #key: Uint8Array;

  constructor(
    readonly providers: readonly OidcProvider[],
    key: Uint8Array,
    private readonly db: Queryable,
    private readonly sessions: ConsoleSessions,
    private readonly clock: Clock,
    private readonly fetchFn: typeof fetch = fetch,
  ) {
    if (key.length < 32) throw new AegisError("INTERNAL", "an OIDC state key needs 32 bytes");
    this.#key = key;
  }

  provider(index: number): OidcProvider {
    const provider = Number.isInteger(index) ? this.providers[index] : undefined;
    if (!provider) throw new AegisError("NOT_FOUND", "no such sign-in provider");
    return provider;
  }

  /**
   * Starts a sign-in: the provider's authorization URL to send the browser to, and the sealed
   * cookie value that browser must bring back to the callback.
   */
  begin(index: number, redirectUri: string, next: string): { url: string; cookie: string } {
    const provider = this.provider(index);
    const pending: OidcPending = {
      provider: provider.index,
      state: random43(),
      nonce: random43(),
      verifier: random43(),
      redirectUri,
      next,
      expiresAt: this.clock().getTime() + OIDC_LOGIN_TTL_SECS * 1000,
    };
    const url = new URL(provider.config.authorization_endpoint);
    const params = {
      response_type: "code",
      client_id: provider.config.client_id,
      redirect_uri: redirectUri,
      scope: provider.config.scopes.join(" "),
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: pkceChallenge(pending.verifier),
      code_challenge_method: "S256",
    };
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    return { url: url.toString(), cookie: this.#seal(pending) };
  }

  /**
   * The sign-in the callback's `state` belongs to: the cookie must be ours, unexpired and carry
   * that state, and the state is spent here, once, on every relay.
   */
  async redeemState(cookie: string | undefined, state: string | undefined): Promise<OidcPending> {
    const pending = this.#unseal(cookie);
    if (!pending || pending.expiresAt <= this.clock().getTime()) throw attemptLost();
    if (!state || !constantTimeEqual(utf8(state), utf8(pending.state))) {
      throw new AegisError(
        "UNAUTHENTICATED",
        "the identity provider's answer does not belong to this browser's sign-in",
        { hint: "Start the sign-in again from the console's sign-in page." },
      );
    }
    const spent = await this.db.query(
      `INSERT INTO console_login_links (jti, expires_at) VALUES ($1, $2)
       ON CONFLICT (jti) DO NOTHING RETURNING jti`,
      [
        SPENT_PREFIX + createHash("sha256").update(pending.state).digest("hex"),
        new Date(pending.expiresAt),
      ],
    );
    if (spent.length === 0) {
      throw new AegisError("UNAUTHENTICATED", "this sign-in answer was already used", {
        hint: "Start the sign-in again from the console's sign-in page.",
      });
    }
    return pending;
  }

  /** The callback: the provider's answer, exchanged for a token, becomes a console session. */
  async finish(
    cookie: string | undefined,
    answer: { code?: string; state?: string; error?: string; errorDescription?: string },
  ): Promise<{ session: NewConsoleSession; next: string }> {
    // First the state, even for an error: only the sign-in this browser started gets to show
    // the provider's words on this console's page.
    const pending = await this.redeemState(cookie, answer.state);
    if (answer.error) {
      // The provider's words, shortened: they are shown to the user, never trusted.
      const detail = answer.errorDescription ? `: ${answer.errorDescription.slice(0, 200)}` : "";
      throw new AegisError(
        "UNAUTHENTICATED",
        `the identity provider did not sign you in (${answer.error.slice(0, 64)}${detail})`,
        { hint: "Try again, or sign in with an operator token." },
      );
    }
    const provider = this.provider(pending.provider);
    if (!answer.code || answer.code.length > 4096) {
      throw new AegisError("UNAUTHENTICATED", "the identity provider's answer has no code");
    }
    const tokens = await this.#exchange(provider, pending, answer.code);
    const which = provider.config.operator_token;
    const token = tokens[which];
    if (typeof token !== "string" || token.length === 0) {
      throw new AegisError(
        "UNAUTHENTICATED",
        `the identity provider's token response has no ${which}`,
        { hint: `Check auth.issuers[].oidc.operator_token and the requested scopes.` },
      );
    }
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(token);
    } catch {
      throw new AegisError("UNAUTHENTICATED", `the identity provider's ${which} is not a JWT`);
    }
    // Read before the signature check, trusted only because the same bytes are verified below.
    if (claims.iss !== provider.issuer) {
      throw new AegisError(
        "UNAUTHENTICATED",
        `the identity provider's ${which} was not issued by ${provider.issuer}`,
      );
    }
    if (which === "id_token") {
      const nonce = typeof claims.nonce === "string" ? claims.nonce : "";
      if (!constantTimeEqual(utf8(nonce), utf8(pending.nonce))) {
        throw new AegisError(
          "UNAUTHENTICATED",
          "the identity provider's id_token does not belong to this sign-in (nonce)",
        );
      }
    }
    // Signature, iss, aud, alg and exp against the issuer's JWKS, then OperatorClaimsSchema
    // (tenant_id, aegis_role): the same path as a pasted token, so no weaker door.
    const session = await this.sessions.signInWithToken(token);
    return { session, next: pending.next };
  }

  async #exchange(
    provider: OidcProvider,
    pending: OidcPending,
    code: string,
  ): Promise<Record<string, unknown>> {
    const { config } = provider;
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: pending.redirectUri,
      client_id: config.client_id,
      code_verifier: pending.verifier,
    });
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    if (provider.clientSecret !== undefined) {
      // client_secret_basic, the OIDC default: both parts form-urlencoded (RFC 6749 §2.3.1).
      const id = encodeURIComponent(config.client_id);
      const secret = encodeURIComponent(provider.clientSecret);
      headers.authorization = `Basic ${btoa(`${id}:${secret}`)}`;
    }
    let status: number;
    let text: string;
    try {
      const response = await this.fetchFn(config.token_endpoint, {
        method: "POST",
        headers,
        body,
        // A token endpoint that redirects is misconfigured; following it would send the code on.
        redirect: "error",
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      });
      status = response.status;
      text = await boundedText(response);
    } catch (cause) {
      throw new AegisError(
        "UNAUTHENTICATED",
        `the identity provider's token endpoint did not answer: ${(cause as Error).message}`,
        { hint: "Try again; if it keeps failing, check auth.issuers[].oidc.token_endpoint." },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const fields = typeof json === "object" && json !== null && !Array.isArray(json)
      ? json as Record<string, unknown>
      : undefined;
    if (status !== 200 || !fields) {
      const error = typeof fields?.error === "string"
        ? fields.error.slice(0, 64)
        : `HTTP ${status}`;
      throw new AegisError(
        "UNAUTHENTICATED",
        `the identity provider refused to exchange the sign-in code (${error})`,
        { hint: "Start the sign-in again from the console's sign-in page." },
      );
    }
    return fields;
  }

  #seal(pending: OidcPending): string {
    const payload = toBase64Url(utf8(JSON.stringify(pending)));
    return `${payload}.${toBase64Url(this.#mac(payload))}`;
  }

  #unseal(cookie: string | undefined): OidcPending | undefined {
    if (!cookie || cookie.length > 4096) return undefined;
    const [payload, mac, extra] = cookie.split(".");
    if (!payload || !mac || extra !== undefined) return undefined;
    try {
      if (!constantTimeEqual(fromBase64Url(mac), this.#mac(payload))) return undefined;
      const value = JSON.parse(new TextDecoder().decode(fromBase64Url(payload)));
      const strings = ["state", "nonce", "verifier", "redirectUri", "next"] as const;
      if (
        typeof value !== "object" || value === null ||
        !strings.every((k) => typeof value[k] === "string") ||
        !Number.isInteger(value.provider) || typeof value.expiresAt !== "number"
      ) {
        return undefined;
      }
      return value as OidcPending;
    } catch {
      return undefined;
    }
  }

  #mac(payload: string): Uint8Array {
    return new Uint8Array(
      createHmac("sha256", this.#key).update(SEAL_PURPOSE).update("\0").update(payload).digest(),
    );
  }
}

/** The body as text, read up to MAX_TOKEN_RESPONSE_BYTES and refused beyond. */
async function boundedText(response: Response): Promise<string> {
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > MAX_TOKEN_RESPONSE_BYTES) {
      // Leaving the loop by throwing cancels the stream.
      throw new TypeError(`the token response is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}
