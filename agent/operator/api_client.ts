// The operator side of the CLI talks to the controller's REST API. The endpoint and token come
// from --endpoint/--token or AEGIS_ENDPOINT/AEGIS_TOKEN; errors come back typed from the
// controller's JSON error body.
import { AegisError, type ErrorCode, isErrorCode } from "../../shared/errors.ts";
import { parseEndpoint } from "../../shared/endpoint.ts";

export interface OperatorTarget {
  baseUrl: string;
  display: string;
  token: string;
}

export interface TargetOptions {
  endpoint?: string;
  token?: string;
}

export function resolveTarget(
  options: TargetOptions,
  env: Record<string, string | undefined>,
): OperatorTarget {
  const endpointText = options.endpoint ?? env.AEGIS_ENDPOINT;
  const token = options.token ?? env.AEGIS_TOKEN;
  if (!endpointText) {
    throw new AegisError("INVALID_ARGUMENT", "no controller endpoint", {
      hint: "Pass --endpoint URL or set AEGIS_ENDPOINT (e.g. http://127.0.0.1:50056).",
    });
  }
  if (!token) {
    throw new AegisError("UNAUTHENTICATED", "no operator token", {
      hint:
        "Set AEGIS_TOKEN or pass --token-file FILE (`aegis-controller token create` mints one).",
    });
  }
  const endpoint = parseEndpoint(endpointText);
  return { baseUrl: endpoint.baseUrl, display: endpoint.display, token };
}

export class OperatorApi {
  constructor(readonly target: OperatorTarget) {}

  async get<T>(path: string): Promise<T> {
    return await (await this.request(path, { method: "GET" })).json() as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return await (await this.request(path, { method: "POST", body: JSON.stringify(body) }))
      .json() as T;
  }

  /** Sends a request and returns the response once it is known to be a success. */
  async request(path: string, init: RequestInit & { signal?: AbortSignal }): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.target.token}`);
    if (init.body) headers.set("content-type", "application/json");
    let response: Response;
    try {
      response = await fetch(this.target.baseUrl + path, { ...init, headers });
    } catch (error) {
      throw new AegisError(
        "UNREACHABLE",
        `cannot reach ${this.target.display}: ${(error as Error).message}`,
      );
    }
    if (response.ok) return response;
    throw await errorFrom(response);
  }
}

async function errorFrom(response: Response): Promise<AegisError> {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text) as {
      error: { code: string; message: string; hint?: string };
    };
    const code: ErrorCode = isErrorCode(error.code) ? error.code : "INTERNAL";
    return new AegisError(code, error.message, { hint: error.hint });
  } catch {
    return new AegisError(
      "INTERNAL",
      `the controller answered ${response.status}: ${text.slice(0, 200)}`,
    );
  }
}
