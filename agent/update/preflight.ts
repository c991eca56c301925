// Runs the new binary once before anything points at it: `<new> --version` must exit 0 and
// print the manifest's version. A binary that cannot start at all (wrong architecture, missing
// loader, a crash on import) fails here, while the old version still runs untouched; that is
// the case the pending-update marker could not catch, since such a daemon never reads it.
import { AegisError } from "../../shared/errors.ts";

const PREFLIGHT_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 4096;

export async function preflight(binary: string, expected: string): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(binary, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw failed(binary, `it cannot be started: ${(error as Error).message}`);
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, PREFLIGHT_TIMEOUT_MS);
  try {
    const [stdout, stderr, status] = await Promise.all([
      readCapped(child.stdout),
      readCapped(child.stderr),
      child.status,
    ]);
    if (status.signal === "SIGKILL") {
      throw failed(binary, `\`--version\` did not finish in ${PREFLIGHT_TIMEOUT_MS / 1000}s`);
    }
    if (status.code !== 0) {
      const why = stderr.trim().split("\n").slice(-1)[0] ?? "";
      throw failed(binary, `\`--version\` exited ${status.code}${why ? `: ${why}` : ""}`);
    }
    // The first token is the version (`1.2.3 (release key …)`), as install.sh reads it too.
    const reported = stdout.trim().split(/\s+/)[0] ?? "";
    if (reported !== expected) {
      throw failed(binary, `it reports version "${reported}", the manifest says ${expected}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

async function readCapped(stream: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for await (const chunk of stream) {
    // Drain the rest (so the child never blocks on a full pipe) but keep only the start.
    if (bytes < MAX_OUTPUT_BYTES) {
      text += decoder.decode(chunk.subarray(0, MAX_OUTPUT_BYTES - bytes));
    }
    bytes += chunk.byteLength;
  }
  return text;
}

function failed(binary: string, why: string): AegisError {
  return new AegisError("UPDATE_FAILED", `the new binary failed its pre-flight run: ${why}`, {
    details: { binary },
    hint: "Nothing was switched; the current version keeps running. Check the release build.",
  });
}
