// Where a host gets releases: the controller it is enrolled with, at the unauthenticated
// /releases/latest/ paths on the controller's own port, trusting the CA the daemon trusts.
// Every cluster endpoint is tried in turn, as the daemon does.
import { AegisError } from "../../shared/errors.ts";
import { type Endpoint, parseEndpoint } from "../../shared/endpoint.ts";
import { parseEdgeConfig } from "../../shared/config/edge_config.ts";
import { readTextIfExists } from "../../shared/fs/atomic.ts";
import type { EdgePaths } from "../state/paths.ts";

/** A request that has not answered (or finished its body) in this long is given up on. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface ReleaseSource {
  endpoints: Endpoint[];
  /** The fetch client trusting the configured CA, if any. */
  client?: Deno.HttpClient;
  close(): void;
}

export async function releaseSource(paths: EdgePaths, caFile?: string): Promise<ReleaseSource> {
  const text = await readTextIfExists(paths.config);
  if (text === undefined) {
    throw new AegisError("NOT_ENROLLED", `this host is not enrolled (no ${paths.config})`);
  }
  const config = parseEdgeConfig(text, paths.config);
  if (config.cluster.endpoints.length === 0) {
    throw new AegisError("CONFIG_INVALID", `${paths.config} names no cluster.endpoints`);
  }
  const ca = caFile ?? config.edge.ca_file;
  const client = ca ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca)] }) : undefined;
  return {
    endpoints: config.cluster.endpoints.map(parseEndpoint),
    client,
    close: () => client?.close(),
  };
}

/**
 * GET /releases/latest/<file> from the first endpoint that answers 200; `use` consumes the body
 * while the request's timeout still runs. A 404 from every endpoint means no release is served.
 */
export async function fetchRelease<T>(
  source: ReleaseSource,
  file: string,
  use: (response: Response) => Promise<T>,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<T> {
  const failures: string[] = [];
  let notServed = 0;
  for (const endpoint of source.endpoints) {
    const url = `${endpoint.baseUrl}/releases/latest/${encodeURIComponent(file)}`;
    try {
      const response = await fetch(url, {
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "error",
        ...(source.client ? { client: source.client } : {}),
      });
      if (response.status === 200) return await use(response);
      await response.body?.cancel();
      if (response.status === 404) notServed++;
      failures.push(`${endpoint.display}: HTTP ${response.status}`);
    } catch (error) {
      if (error instanceof AegisError) throw error;
      failures.push(`${endpoint.display}: ${(error as Error).message}`);
    }
  }
  if (notServed === source.endpoints.length) {
    throw new AegisError("NOT_FOUND", `the controller serves no release (${file}: 404)`, {
      hint: "Set bootstrap.releases_dir in the controller's config to a directory of releases.",
    });
  }
  throw new AegisError("UNREACHABLE", `cannot fetch ${file}: ${failures.join("; ")}`);
}
