// Replaced keys are kept for a while (`--keep-old`), then deleted by the daemon. Each archived
// key is `archive/<rfc3339>.key`; `archive/retention.json` says until when each one is kept.
import { join } from "node:path";
import { ensureDir, readTextIfExists, writeFileAtomic } from "../../shared/fs/atomic.ts";
import type { FileWrite } from "./files.ts";

type Retention = Record<string, string>;

/** The files that archive `pem`: the key and the updated retention list (written by the caller). */
export async function archiveWrites(
  archiveDir: string,
  pem: string,
  keepMs: number,
  now = new Date(),
): Promise<FileWrite[]> {
  await ensureDir(archiveDir, 0o700);
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  // RFC 3339 as the name; Windows file names cannot hold ":".
  const name = `${Deno.build.os === "windows" ? stamp.replaceAll(":", "-") : stamp}.key`;
  const retention = await readRetention(archiveDir);
  retention[name] = new Date(now.getTime() + keepMs).toISOString();
  return [
    { path: join(archiveDir, name), data: pem, mode: 0o600 },
    {
      path: join(archiveDir, "retention.json"),
      data: JSON.stringify(retention, null, 2) + "\n",
      mode: 0o600,
    },
  ];
}

/** Deletes archived keys whose time is up; returns their names. */
export async function sweepArchive(archiveDir: string, now = new Date()): Promise<string[]> {
  const retention = await readRetention(archiveDir);
  const expired = Object.entries(retention).filter(([, until]) =>
    Date.parse(until) <= now.getTime()
  );
  if (expired.length === 0) return [];
  for (const [name] of expired) {
    await Deno.remove(join(archiveDir, name)).catch(() => {});
    delete retention[name];
  }
  await writeFileAtomic(
    join(archiveDir, "retention.json"),
    JSON.stringify(retention, null, 2) + "\n",
    { mode: 0o600 },
  );
  return expired.map(([name]) => name);
}

async function readRetention(archiveDir: string): Promise<Retention> {
  const text = await readTextIfExists(join(archiveDir, "retention.json"));
  try {
    return text ? JSON.parse(text) as Retention : {};
  } catch {
    return {};
  }
}
