// Reads a streamed NDJSON response body one event at a time, as lines arrive. The connection
// dying under the stream (the controller or a relay gone, a reset) is UNREACHABLE, said as such,
// never a runtime TypeError: the caller cannot know how far the remote side got.
import { AegisError } from "../../shared/errors.ts";

/**
 * The longest line read: far above any event the controller sends (an output chunk, a result),
 * low enough that a broken or hostile peer cannot grow the buffer without end.
 */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

export async function* readNdjson<T>(
  body: ReadableStream<Uint8Array>,
  source = "the controller",
  hint?: string,
  maxLineBytes = DEFAULT_MAX_LINE_BYTES,
): AsyncGenerator<T> {
  let buffered = "";
  let number = 0;
  const parse = (line: string): T => {
    number++;
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new AegisError("INVALID_ARGUMENT", `line ${number} from ${source} is not JSON`, {
        hint,
      });
    }
  };
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (true) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new AegisError(
          "UNREACHABLE",
          `lost the connection to ${source} in the middle of the stream: ${
            (error as Error).message
          }`,
          { hint, cause: error },
        );
      }
      if (chunk.done) break;
      buffered += chunk.value;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield parse(line);
      }
      if (buffered.length > maxLineBytes) {
        throw new AegisError(
          "INVALID_ARGUMENT",
          `line ${number + 1} from ${source} is longer than ${maxLineBytes} bytes`,
          { hint },
        );
      }
    }
    // A last line without its newline still counts.
    if (buffered.trim()) yield parse(buffered.trim());
  } finally {
    // A reader that stops early (the exit line came) frees the connection now.
    await reader.cancel().catch(() => {});
  }
}
