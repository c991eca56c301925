// Reads an untrusted response body with a ceiling: a Content-Length above it is refused before
// the first byte, and a body that streams past it is cut off there, so a hostile or broken
// server cannot fill memory or disk.
import { concatBytes } from "../../shared/crypto/encoding.ts";
import { AegisError } from "../../shared/errors.ts";

export async function* boundedChunks(
  response: Response,
  maxBytes: number,
  what: string,
): AsyncGenerator<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(what, maxBytes);
  }
  if (!response.body) return;
  let seen = 0;
  const reader = response.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
      if (seen > maxBytes) throw tooLarge(what, maxBytes);
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

export async function readBounded(
  response: Response,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of boundedChunks(response, maxBytes, what)) parts.push(chunk);
  return concatBytes(...parts);
}

function tooLarge(what: string, maxBytes: number): AegisError {
  return new AegisError(
    "RELEASE_SIGNATURE_INVALID",
    `${what} is larger than the ${maxBytes} bytes allowed; refused`,
  );
}
