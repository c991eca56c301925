// `aegis-controller health`: asks a running controller's /healthz and exits 0 only when it answers
// SERVING. For container HEALTHCHECKs and service managers: the image has no shell or curl, and
// the binary that serves is the one that can ask.
import { AegisError } from "../../shared/errors.ts";
import type { Io } from "../../shared/cli/io.ts";

export const DEFAULT_HEALTH_URL = "http://127.0.0.1:50056";
const TIMEOUT_MS = 5_000;

export async function health(options: { url: string }, io: Io): Promise<number> {
  const base = options.url.replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+$/.test(base)) {
    throw new AegisError("INVALID_ARGUMENT", `--url ${options.url} is not http(s)://host:port`);
  }
  let response: Response;
  try {
    response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    throw new AegisError("UNREACHABLE", `cannot reach ${base}: ${(error as Error).message}`);
  }
  const body = await response.json().catch(() => ({})) as { status?: string };
  const status = body.status ?? `HTTP ${response.status}`;
  io.out(`${status}\n`);
  return status === "SERVING" ? 0 : 1;
}
