// The Deno runtime (denort) each `deno compile --target` needs. By default deno compile fetches
// denort-<triple>.zip itself; an air-gapped builder passes --runtime-dir with those archives
// (as the Deno download site names them) or with denort binaries already extracted. We hand
// the binary to deno compile through DENORT_BIN, the variable it reads before it downloads.
import { inflateRawSync } from "node:zlib";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { AegisError } from "../shared/errors.ts";
import { exists } from "../shared/fs/atomic.ts";

/** What the builder looks for in a runtime directory for one target triple, in order. */
export function runtimeCandidates(dir: string, triple: string): string[] {
  const exe = triple.includes("windows") ? ".exe" : "";
  return [join(dir, `denort-${triple}.zip`), join(dir, `denort-${triple}${exe}`)];
}

/**
 * Finds every target's runtime before anything compiles, so one message names every missing
 * file. Returns the path of an extracted denort per triple (archives unpacked into `workDir`).
 */
export async function resolveRuntimes(
  dir: string,
  triples: readonly string[],
  workDir: string,
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const triple of triples) {
    const [zip, binary] = runtimeCandidates(dir, triple);
    if (await exists(zip)) {
      const exe = triple.includes("windows") ? "denort.exe" : "denort";
      const out = join(workDir, `denort-${triple}${triple.includes("windows") ? ".exe" : ""}`);
      await Deno.writeFile(out, extractZipEntry(await Deno.readFile(zip), exe, zip), {
        mode: 0o755,
      });
      found.set(triple, out);
    } else if (await exists(binary)) {
      found.set(triple, binary);
    } else {
      missing.push(`${zip} (or the extracted ${binary})`);
    }
  }
  if (missing.length) {
    throw new AegisError(
      "RELEASE_BUILD_FAILED",
      `no Deno runtime for ${missing.length} target(s); missing:\n  ${missing.join("\n  ")}`,
      {
        hint:
          `Copy denort-<target>.zip for Deno ${Deno.version.deno} (the same version as this deno) into ${dir}: on the Deno download site they are under release/v${Deno.version.deno}/.`,
      },
    );
  }
  return found;
}

/** Reads one stored or deflated entry of a zip archive (all a denort archive holds). */
export function extractZipEntry(zip: Uint8Array, name: string, source: string): Uint8Array {
  const bad = (why: string) =>
    new AegisError("RELEASE_BUILD_FAILED", `${source} is not a usable denort archive: ${why}`);
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  // The end-of-central-directory record sits in the last 22 bytes + an optional comment.
  let end = -1;
  for (let at = zip.length - 22; at >= Math.max(0, zip.length - 22 - 65535); at--) {
    if (view.getUint32(at, true) === 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end < 0) throw bad("no zip directory");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  for (let i = 0; i < count; i++) {
    if (at + 46 > zip.length || view.getUint32(at, true) !== 0x02014b50) {
      throw bad("corrupt zip directory");
    }
    const method = view.getUint16(at + 10, true);
    const compressed = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extra = view.getUint16(at + 30, true);
    const comment = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const entry = new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extra + comment;
    if (entry !== name) continue;
    if (local + 30 > zip.length || view.getUint32(local, true) !== 0x04034b50) {
      throw bad("corrupt local header");
    }
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const data = zip.subarray(start, start + compressed);
    const out = method === 0
      ? data
      : method === 8
      ? new Uint8Array(inflateRawSync(Buffer.from(data)))
      : undefined;
    if (!out) throw bad(`compression method ${method} is not supported`);
    if (out.length !== size) throw bad(`${name} is truncated`);
    return out;
  }
  throw bad(`it holds no ${name}`);
}
