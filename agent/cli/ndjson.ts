// Reads a streamed NDJSON response body one event at a time, as lines arrive. The connection
// dying under the stream (the controller or a relay gone, a reset) is UNREACHABLE, said as such,
// never a runtime TypeError: the caller cannot know how far the remote side got.
import { AegisError } from "../../shared/errors.ts";

export async function* readNdjson<T>(
  body: ReadableStream<Uint8Array>,
  source = "the controller",
  hint?: string,
): AsyncGenerator<T> {
  let buffered = "";
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
      if (chunk.done) return;
      buffered += chunk.value;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield JSON.parse(line) as T;
      }
    }
  } finally {
    // A reader that stops early (the exit line came) frees the connection now.
    await reader.cancel().catch(() => {});
  }
}
