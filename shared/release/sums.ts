// SHA256SUMS in coreutils' format ("<hex>  <file>" per line), so `sha256sum -c SHA256SUMS` and
// `shasum -a 256 -c SHA256SUMS` check a release directory; plus the hashing both the build and
// the readers of a download use.
import { createHash } from "node:crypto";
import { AegisError } from "../errors.ts";
import { ARTIFACT_FILE_PATTERN } from "./manifest.ts";

export interface SumEntry {
  sha256: string;
  file: string;
}

/** A SHA256SUMS file is small: one line per artifact. */
export const MAX_SUMS_BYTES = 16 * 1024;
const LINE = /^([0-9a-f]{64}) [ *](.+)$/;

/** Renders entries in `sha256sum` text mode ("<hex>␠␠<file>\n"), in the order given. */
export function renderSums(entries: readonly SumEntry[]): string {
  return entries.map((e) => {
    checkEntry(e.sha256, e.file);
    return `${e.sha256}  ${e.file}\n`;
  }).join("");
}

/**
 * Parses SHA256SUMS as `sha256sum` writes it (text " " or binary "*" marker). Strict: bounded,
 * one plain file name per line, no duplicates; anything else is refused, not skipped.
 */
export function parseSums(text: string): SumEntry[] {
  if (text.length > MAX_SUMS_BYTES) throw refused(`larger than ${MAX_SUMS_BYTES} bytes`);
  const entries: SumEntry[] = [];
  const seen = new Set<string>();
  for (const [index, line] of text.replace(/\r?\n$/, "").split(/\r?\n/).entries()) {
    const match = LINE.exec(line);
    if (!match) throw refused(`line ${index + 1} is not "<sha256>  <file>"`);
    const [, sha256, file] = match;
    checkEntry(sha256, file);
    if (seen.has(file)) throw refused(`${file} is listed twice`);
    seen.add(file);
    entries.push({ sha256, file });
  }
  return entries;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** SHA-256 and size of a file, read in chunks (binaries are tens of megabytes). */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  // The readable stream closes the file when it ends or is abandoned.
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest("hex"), size };
}

/** Copies a file to a new path (created with `mode`), hashing it on the way, then syncs it. */
export async function copyFileHashed(
  from: string,
  to: string,
  mode: number,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  const source = await Deno.open(from, { read: true });
  const target = await Deno.open(to, { write: true, createNew: true, mode });
  try {
    for await (const chunk of source.readable) {
      hash.update(chunk);
      size += chunk.length;
      for (let at = 0; at < chunk.length;) at += await target.write(chunk.subarray(at));
    }
    await target.sync();
  } finally {
    target.close();
  }
  // The umask may have narrowed the mode at creation; set it exactly.
  if (Deno.build.os !== "windows") await Deno.chmod(to, mode);
  return { sha256: hash.digest("hex"), size };
}

function checkEntry(sha256: string, file: string): void {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw refused(`the digest for ${file} is not SHA-256 hex`);
  if (!ARTIFACT_FILE_PATTERN.test(file)) throw refused(`"${file}" is not a plain file name`);
}

function refused(why: string): AegisError {
  return new AegisError("RELEASE_SIGNATURE_INVALID", `SHA256SUMS refused: ${why}`);
}
