// A local identity provider that stands in for Keycloak in end-to-end tests: a process of its
// own, serving two realms the way Keycloak lays them out, so the controller fetches JWKS over
// real HTTP from another process exactly as it would from Keycloak.
//
//   deno run -A tests/support/local_issuer_process.ts [--exit-with-stdin]
//
// Prints one JSON line, {"base_url":"http://127.0.0.1:PORT"}, once it listens. SIGTERM or
// Ctrl-C ends it; with --exit-with-stdin it also ends when its stdin closes, so a test runner
// that dies without stopping it leaves nothing behind.
//
// Per realm R (aegis-system for operators, zaru-consumer for consumer users):
//   GET  /realms/R/protocol/openid-connect/certs     the JWKS: public keys only, RS256 + ES256
//   GET  /realms/R/.well-known/openid-configuration   issuer, jwks_uri
//   POST /realms/R/mint    test only: { claims, ttl_secs?, alg?, audience? } -> { token }
//   POST /realms/R/rotate  test only: fresh keys for R, the old ones dropped -> { kids }
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

export const REALMS = ["aegis-system", "zaru-consumer"] as const;
export type Realm = typeof REALMS[number];
export const SIGNING_ALGS = ["RS256", "ES256"] as const;
export type SigningAlg = typeof SIGNING_ALGS[number];
/** The audience the controller under test is configured with, for both realms. */
export const DEFAULT_AUDIENCE = "aegis-edge";
export const DEFAULT_TTL_SECS = 300;
/** A year either way: long enough for any test, short of numbers that overflow a date. */
export const MAX_TTL_SECS = 365 * 24 * 3600;
/** A mint request is a handful of claims; anything larger is a mistake, not a token. */
export const MAX_MINT_BODY_BYTES = 64 * 1024;
const MAX_AUDIENCE_CHARS = 256;

interface RealmKey {
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey;
  publicJwk: Record<string, unknown>;
}

async function realmKey(alg: SigningAlg): Promise<RealmKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const kid = crypto.randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicJwk };
}

/** One key per algorithm, generated per realm, so no two realms ever share a key. */
async function realmKeys(): Promise<Map<SigningAlg, RealmKey>> {
  const keys = new Map<SigningAlg, RealmKey>();
  for (const alg of SIGNING_ALGS) keys.set(alg, await realmKey(alg));
  return keys;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface MintRequest {
  claims: JWTPayload;
  ttlSecs: number;
  alg: SigningAlg;
  audience?: string;
}

function parseMint(body: unknown): MintRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  const { claims, ttl_secs: ttl, alg, audience } = body as Record<string, unknown>;
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) {
    throw new HttpError(400, "claims must be a JSON object");
  }
  if (ttl !== undefined && (typeof ttl !== "number" || !Number.isInteger(ttl))) {
    throw new HttpError(400, "ttl_secs must be an integer");
  }
  if (typeof ttl === "number" && Math.abs(ttl) > MAX_TTL_SECS) {
    throw new HttpError(400, `ttl_secs must be within ±${MAX_TTL_SECS}`);
  }
  if (alg !== undefined && !SIGNING_ALGS.includes(alg as SigningAlg)) {
    throw new HttpError(400, `alg must be one of ${SIGNING_ALGS.join(", ")}`);
  }
  if (
    audience !== undefined &&
    (typeof audience !== "string" || audience === "" || audience.length > MAX_AUDIENCE_CHARS)
  ) {
    throw new HttpError(400, `audience must be a string of 1 to ${MAX_AUDIENCE_CHARS} chars`);
  }
  return {
    claims: claims as JWTPayload,
    ttlSecs: typeof ttl === "number" ? ttl : DEFAULT_TTL_SECS,
    alg: (alg as SigningAlg | undefined) ?? "RS256",
    audience: audience as string | undefined,
  };
}

/** Reads at most `limit` bytes of a body, refusing more rather than buffering it. */
async function boundedText(request: Request, limit: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw new HttpError(413, `the body is over ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    for await (const chunk of request.body) {
      size += chunk.byteLength;
      if (size > limit) throw new HttpError(413, `the body is over ${limit} bytes`);
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

export class LocalIssuerServer {
  readonly #keys = new Map<Realm, Map<SigningAlg, RealmKey>>();
  #server?: Deno.HttpServer<Deno.NetAddr>;

  async listen(): Promise<string> {
    for (const realm of REALMS) this.#keys.set(realm, await realmKeys());
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#handle(request),
    );
    return this.baseUrl;
  }

  get baseUrl(): string {
    if (!this.#server) throw new Error("the issuer is not listening");
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  issuer(realm: Realm): string {
    return `${this.baseUrl}/realms/${realm}`;
  }

  async shutdown(): Promise<void> {
    await this.#server?.shutdown();
  }

  async #handle(request: Request): Promise<Response> {
    try {
      return await this.#route(request);
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      return Response.json({ error: (error as Error).message }, { status });
    }
  }

  async #route(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const match = path.match(/^\/realms\/([a-z-]{1,64})\/(.+)$/);
    const realm = match?.[1] as Realm | undefined;
    if (!match || !REALMS.includes(realm!)) throw new HttpError(404, "no such realm");
    const route = `${request.method} ${match[2]}`;
    switch (route) {
      case "GET protocol/openid-connect/certs":
        return Response.json({ keys: this.#publicKeys(realm!) });
      case "GET .well-known/openid-configuration":
        return Response.json({
          issuer: this.issuer(realm!),
          jwks_uri: `${this.issuer(realm!)}/protocol/openid-connect/certs`,
          id_token_signing_alg_values_supported: [...SIGNING_ALGS],
          subject_types_supported: ["public"],
        });
      case "POST mint": {
        const text = await boundedText(request, MAX_MINT_BODY_BYTES);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpError(400, "the body is not JSON");
        }
        return Response.json({ token: await this.#mint(realm!, parseMint(body)) });
      }
      case "POST rotate": {
        // Keycloak drops a key by removing its provider: tokens it signed stop verifying at once.
        const keys = await realmKeys();
        this.#keys.set(realm!, keys);
        return Response.json({ kids: [...keys.values()].map((k) => k.kid) });
      }
      default:
        throw new HttpError(404, `no route ${route} in realm ${realm}`);
    }
  }

  #publicKeys(realm: Realm): Record<string, unknown>[] {
    return [...this.#keys.get(realm)!.values()].map((k) => k.publicJwk);
  }

  /**
   * Signs claims as the realm does: the realm's own iss, fresh iat/exp/jti, and the audience
   * the request names (else the claims' own aud, else the controller's). Claims may set any
   * other field, sub and azp included; iss/iat/exp/jti are always the issuer's.
   */
  async #mint(realm: Realm, mint: MintRequest): Promise<string> {
    const key = this.#keys.get(realm)!.get(mint.alg)!;
    const now = Math.floor(Date.now() / 1000);
    const aud = mint.audience ?? mint.claims.aud ?? DEFAULT_AUDIENCE;
    return await new SignJWT({ ...mint.claims, aud })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .setIssuer(this.issuer(realm))
      .setIssuedAt(now)
      .setExpirationTime(now + mint.ttlSecs)
      .setJti(crypto.randomUUID())
      .sign(key.privateKey);
  }
}

async function main(): Promise<void> {
  const server = new LocalIssuerServer();
  const baseUrl = await server.listen();
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= server.shutdown().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(JSON.stringify({ base_url: baseUrl }));
  if (Deno.args.includes("--exit-with-stdin")) {
    // The parent holds our stdin open for as long as it lives; EOF means it is gone.
    for await (const _ of Deno.stdin.readable) { /* nothing is ever sent */ }
    stop();
  }
}

if (import.meta.main) await main();
