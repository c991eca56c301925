// Everything that makes up this host's identity on disk, so that logout leaves nothing a later
// enrollment or an attacker could pick up: the key and token, a rotation cut short
// (node.key.new, node.token.new), the credentials lock, and temp files of interrupted writes.
import { basename, join } from "node:path";
import type { EdgePaths } from "../state/paths.ts";

/** The identity's files and directories that exist now (config and secrets are not among them). */
export async function identityFiles(paths: EdgePaths): Promise<string[]> {
  const fixed = [
    paths.key,
    paths.publicKey,
    paths.nodeToken,
    paths.enrollmentToken,
    paths.state,
    paths.archive,
    paths.pendingKey,
    paths.pendingToken,
    join(paths.dir, ".credentials.lock"),
  ];
  // shared/fs/atomic.ts writes `.<name>.<uuid>.tmp` beside its target and renames it over.
  const names = new Set(fixed.map((p) => basename(p)));
  const temps: string[] = [];
  try {
    for await (const entry of Deno.readDir(paths.dir)) {
      const match = entry.name.match(/^\.(.+)\.[0-9a-f-]{36}\.tmp$/);
      if (match && names.has(match[1])) temps.push(join(paths.dir, entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return [...fixed, ...temps];
}
