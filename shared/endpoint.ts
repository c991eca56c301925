// The controller endpoint as tokens carry it (`cep`): `host:port` (or a bare host, port 443)
// means TLS; an explicit `http://host:port` means plaintext, for local use; `https://` is TLS.
import { AegisError } from "./errors.ts";

export interface Endpoint {
  /** As written in the token or config. */
  raw: string;
  /** What Connect transports take: `https://host:port` or `http://host:port`. */
  baseUrl: string;
  /** `host:port`, for people. */
  display: string;
  tls: boolean;
}

export function parseEndpoint(raw: string): Endpoint {
  const text = raw.trim();
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  if (hasScheme && !/^https?:\/\//i.test(text)) {
    throw new AegisError("INVALID_ARGUMENT", `endpoint "${raw}" has an unsupported scheme`, {
      hint:
        "Use host:port (TLS), https://host:port, or http://host:port for a local plaintext controller.",
    });
  }
  let url: URL;
  try {
    url = new URL(hasScheme ? text : `https://${text}`);
  } catch {
    throw new AegisError("INVALID_ARGUMENT", `endpoint "${raw}" is not host:port or a URL`);
  }
  if (!url.hostname || (url.pathname !== "/" && url.pathname !== "")) {
    throw new AegisError("INVALID_ARGUMENT", `endpoint "${raw}" must be host:port with no path`);
  }
  const tls = url.protocol === "https:";
  const port = url.port || (tls ? "443" : "80");
  const display = `${url.hostname}:${port}`;
  return { raw: text, baseUrl: `${url.protocol}//${display}`, display, tls };
}

/** Several endpoints may be listed, comma separated, for failover between relays. */
export function parseEndpointList(raw: string): Endpoint[] {
  const parts = raw.split(",").map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new AegisError("INVALID_ARGUMENT", "no endpoint given");
  return parts.map(parseEndpoint);
}
