// A stand-in external identity provider for tests: a real HTTP server on loopback serving a JWKS
// whose keys the test can rotate, and a signer for tokens in that provider's name.
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

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

export class FakeIdp {
  keys: IdpKey[] = [];
  fetches = 0;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      this.fetches++;
      return Response.json({ keys: this.keys.map((k) => k.jwk) });
    });
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/jwks`;
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
