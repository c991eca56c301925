// The test's handle on a local identity provider process (local_issuer_process.ts), which
// stands in for Keycloak with two realms: aegis-system (operators) and zaru-consumer (consumer
// users). Everything here talks to that process over HTTP with fetch only: the test process may
// run an in-process controller whose @hono/node-server swaps globalThis.Response, so nothing in
// this file serves HTTP itself.
//
// Also: claim builders shaped like Keycloak's tokens, and builders of BAD tokens for refusal
// tests that never touch the issuer's keys (forged, unsigned, selfSigned).
import {
  base64url,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  type JWTPayload,
  SignJWT,
} from "jose";
import { AegisError } from "../../shared/errors.ts";
import {
  DEFAULT_AUDIENCE,
  DEFAULT_TTL_SECS,
  type Realm,
  REALMS,
  type SigningAlg,
} from "./local_issuer_process.ts";

export { DEFAULT_AUDIENCE, type Realm, REALMS, type SigningAlg };

const PROCESS_MAIN = new URL("./local_issuer_process.ts", import.meta.url).pathname;
/** Generating four keys and listening takes well under this, even on a loaded machine. */
const START_TIMEOUT_MS = 30_000;
/** The issuer's answers are a JWKS or a token: a few KiB. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** What stderr is kept for error messages: the tail is where a crash says why. */
const MAX_STDERR_CHARS = 16 * 1024;
/** The first stdout line is one small JSON object. */
const MAX_READY_LINE_CHARS = 4096;

export interface MintOptions {
  /** Lifetime from now; negative gives a token that is already expired. Default 300. */
  ttlSecs?: number;
  alg?: SigningAlg;
  /** The token's aud. Default: the claims' own aud, else "aegis-edge". */
  audience?: string;
}

export interface JwkSet {
  keys: Array<{ kid: string; alg: string; kty: string; [field: string]: unknown }>;
}

async function boundedJson(response: Response, what: string): Promise<unknown> {
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new AegisError("PAYLOAD_TOO_LARGE", `${what}: the answer is over ${MAX_ANSWER_BYTES}`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new AegisError("INTERNAL", `${what}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

export class LocalIssuer {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pumps: Promise<void>[] = [];
  #stderr = "";
  #stopped?: Promise<void>;

  private constructor(child: Deno.ChildProcess, readonly baseUrl: string) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
  }

  /** Starts the issuer process and waits until it listens. */
  static async start(): Promise<LocalIssuer> {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", PROCESS_MAIN, "--exit-with-stdin"],
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = { text: "" };
    const stderrPump = (async () => {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr.text = (stderr.text + text).slice(-MAX_STDERR_CHARS);
      }
    })();
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let line = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), START_TIMEOUT_MS);
    try {
      while (!line.includes("\n")) {
        const { value, done } = await stdout.read();
        if (done) break;
        line += value;
        if (line.length > MAX_READY_LINE_CHARS) break;
      }
    } finally {
      clearTimeout(timer);
    }
    let baseUrl: unknown;
    try {
      baseUrl = (JSON.parse(line.split("\n")[0]) as { base_url?: unknown }).base_url;
    } catch { /* reported below */ }
    if (typeof baseUrl !== "string" || !baseUrl.startsWith("http://127.0.0.1:")) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await child.stdin.close().catch(() => {});
      await stderrPump;
      throw new AegisError("INTERNAL", "the local issuer did not start", {
        details: { stdout: line.slice(0, 500), stderr: stderr.text },
      });
    }
    const issuer = new LocalIssuer(child, baseUrl);
    // Later stdout is nothing we read, but it is drained so the child never blocks on a full pipe.
    issuer.#pumps.push(
      (async () => {
        while (!(await stdout.read()).done) { /* drain */ }
      })(),
      stderrPump.then(() => {
        issuer.#stderr = stderr.text;
      }),
    );
    return issuer;
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** The `iss` of the realm's tokens: `<base>/realms/<realm>`, as Keycloak names it. */
  issuer(realm: Realm): string {
    return `${this.baseUrl}/realms/${realm}`;
  }

  jwksUrl(realm: Realm): string {
    return `${this.issuer(realm)}/protocol/openid-connect/certs`;
  }

  discoveryUrl(realm: Realm): string {
    return `${this.issuer(realm)}/.well-known/openid-configuration`;
  }

  async jwks(realm: Realm): Promise<JwkSet> {
    return await this.#call("GET", this.jwksUrl(realm)) as JwkSet;
  }

  /** A token signed by the realm's current key, with iss/iat/exp/jti set by the issuer. */
  async mint(realm: Realm, claims: JWTPayload, opts: MintOptions = {}): Promise<string> {
    const answer = await this.#call("POST", `${this.issuer(realm)}/mint`, {
      claims,
      ttl_secs: opts.ttlSecs,
      alg: opts.alg,
      audience: opts.audience,
    }) as { token?: unknown };
    if (typeof answer.token !== "string") {
      throw new AegisError("INTERNAL", "the local issuer's mint answer has no token");
    }
    return answer.token;
  }

  /** Replaces the realm's keys; tokens signed by the old ones stop verifying. New kids back. */
  async rotate(realm: Realm): Promise<string[]> {
    const answer = await this.#call("POST", `${this.issuer(realm)}/rotate`, {}) as {
      kids: string[];
    };
    return answer.kids;
  }

  /**
   * A token the realm's JWKS cannot vouch for although it looks like the realm's: signed by a
   * fresh key of `alg` that no JWKS holds, under the `kid` of the realm's current `alg` key (so
   * a verifier finds a key and must fail on the signature, not on a lookup).
   */
  async selfSigned(realm: Realm, claims: JWTPayload, opts: MintOptions = {}): Promise<string> {
    const alg = opts.alg ?? "RS256";
    const { keys } = await this.jwks(realm);
    const kid = keys.find((k) => k.alg === alg)?.kid;
    if (!kid) throw new AegisError("NOT_FOUND", `realm ${realm} has no ${alg} key`);
    return await signWithFreshKey(claims, {
      alg,
      kid,
      issuer: this.issuer(realm),
      audience: opts.audience ?? claims.aud ?? DEFAULT_AUDIENCE,
      ttlSecs: opts.ttlSecs ?? DEFAULT_TTL_SECS,
    });
  }

  /** Stops the process (SIGTERM, SIGKILL after 10 s) and waits until it is gone. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* already gone */ }
      const killer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await this.#child.status;
      clearTimeout(killer);
      await this.#stdin.close().catch(() => {});
      await Promise.all(this.#pumps);
    })();
    return this.#stopped;
  }

  /** What the process wrote to stderr (its tail), for a failing test to show. */
  get stderr(): string {
    return this.#stderr;
  }

  async #call(method: "GET" | "POST", url: string, body?: unknown): Promise<unknown> {
    const response = await fetch(url, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await boundedJson(response, `${method} ${url}`);
    if (!response.ok) {
      const message = (answer as { error?: unknown }).error;
      throw new AegisError(
        response.status === 400 ? "INVALID_ARGUMENT" : "INTERNAL",
        `local issuer: ${method} ${url}: ${response.status} ${String(message)}`,
      );
    }
    return answer;
  }
}

async function signWithFreshKey(
  claims: JWTPayload,
  o: { alg: SigningAlg; kid: string; issuer: string; audience: string | string[]; ttlSecs: number },
): Promise<string> {
  const { privateKey } = await generateKeyPair(o.alg);
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ ...claims, aud: o.audience })
    .setProtectedHeader({ alg: o.alg, kid: o.kid, typ: "JWT" })
    .setIssuer(o.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + o.ttlSecs)
    .setJti(crypto.randomUUID())
    .sign(privateKey);
}

const encodeJson = (value: unknown) => base64url.encode(JSON.stringify(value));

/**
 * The token with its payload changed (by `patch`, default: a claim escalating to admin) and
 * its header and signature kept: what tampering in transit looks like.
 */
export function forged(token: string, patch: JWTPayload = { aegis_role: "admin" }): string {
  const [header, , signature] = token.split(".");
  return `${header}.${encodeJson({ ...decodeJwt(token), ...patch })}.${signature}`;
}

/** The token re-headed as alg "none" (its kid kept) with an empty signature. */
export function unsigned(token: string): string {
  const header = { ...decodeProtectedHeader(token), alg: "none" };
  return `${encodeJson(header)}.${token.split(".")[1]}.`;
}

export type OperatorRole = "admin" | "operator" | "readonly";

/** The realm roles Keycloak grants every user of a realm; a real token always carries them. */
function defaultRealmRoles(realm: Realm): string[] {
  return ["offline_access", "uma_authorization", `default-roles-${realm}`];
}

/**
 * Claims of an operator's token from the aegis-system realm, as its protocol mappers write them.
 * `roles` are the edge roles (aegis.edge.*) granted besides Keycloak's default realm roles; the
 * roles claim is always present, as in Keycloak, so an operator given none holds no edge role.
 */
export function operatorClaims(o: {
  sub: string;
  role: OperatorRole;
  tenant: string;
  roles?: string[];
  /** The client the token was issued to. Default "aegis-console". */
  azp?: string;
  aud?: string | string[];
}): JWTPayload {
  return {
    sub: o.sub,
    aegis_role: o.role,
    tenant_id: o.tenant,
    realm_access: { roles: [...defaultRealmRoles("aegis-system"), ...(o.roles ?? [])] },
    azp: o.azp ?? "aegis-console",
    ...(o.aud === undefined ? {} : { aud: o.aud }),
  };
}

export type ConsumerTier = "Free" | "Pro" | "Business" | "Enterprise";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Claims of a consumer user's token from the zaru-consumer realm: the user id as sub, the tier,
 * and the per-user tenant u-<uuid> the realm's mapper derives from it.
 */
export function consumerClaims(o: {
  userId: string;
  tier: ConsumerTier;
  roles?: string[];
}): JWTPayload {
  if (!UUID.test(o.userId)) {
    throw new AegisError("INVALID_ARGUMENT", `a consumer user id is a UUID, not "${o.userId}"`);
  }
  return {
    sub: o.userId,
    zaru_tier: o.tier,
    tenant_id: `u-${o.userId}`,
    realm_access: { roles: [...defaultRealmRoles("zaru-consumer"), ...(o.roles ?? [])] },
  };
}
