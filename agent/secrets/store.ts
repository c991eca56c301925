// The host's own secrets, one 0600 file per secret in a 0700 directory. The daemon resolves
// `secret://NAME` values from here on the host, so a secret's value never crosses the wire.
// Modes are checked on every read, not only at write time: a copy, an unpack or a stray chmod
// can loosen them later, and the store must never leave a secret readable by others.
import { join } from "node:path";
import { AegisError } from "../../shared/errors.ts";
import { ensureDir, writeFileAtomic } from "../../shared/fs/atomic.ts";

export interface SecretInfo {
  name: string;
  /** Size of the value in bytes (UTF-8). */
  bytes: number;
  /** When the value was last written, ISO 8601. */
  updated_at: string;
}

export type SecretResolver = (name: string) => Promise<string | undefined>;

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
// A leading dot is refused so that names can never be `.`/`..` or collide with the
// `.NAME.<uuid>.tmp` files writeFileAtomic leaves beside the target while it writes.
const NAME = /^(?!\.)[A-Za-z0-9_.-]{1,128}$/;
export const SECRET_NAME_RULE = "1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.`";

export function isSecretName(name: string): boolean {
  return NAME.test(name);
}

export function assertSecretName(name: string): void {
  if (!isSecretName(name)) {
    throw new AegisError(
      "INVALID_ARGUMENT",
      `invalid secret name ${JSON.stringify(name)}: use ${SECRET_NAME_RULE}`,
      { details: { name } },
    );
  }
}

export async function setSecret(dir: string, name: string, value: string): Promise<void> {
  assertSecretName(name);
  if (!await ensureDir(dir, DIR_MODE)) await tighten(dir, DIR_MODE);
  await writeFileAtomic(join(dir, name), value, { mode: FILE_MODE });
}

export async function getSecret(dir: string, name: string): Promise<string | undefined> {
  assertSecretName(name);
  if (!await tighten(dir, DIR_MODE)) return undefined;
  const path = join(dir, name);
  if (!await regularFile(path)) return undefined;
  await tighten(path, FILE_MODE);
  return await Deno.readTextFile(path);
}

/** Every secret's name, size and age, sorted by name; never a value. */
export async function listSecrets(dir: string): Promise<SecretInfo[]> {
  if (!await tighten(dir, DIR_MODE)) return [];
  const secrets: SecretInfo[] = [];
  for await (const entry of Deno.readDir(dir)) {
    // Temp files of a write in progress, and anything else that is not ours, are not secrets.
    if (!isSecretName(entry.name)) continue;
    // Only regular files: getSecret() refuses anything else, so it is not listed as usable.
    if (!entry.isFile) continue;
    const path = join(dir, entry.name);
    const info = await Deno.lstat(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return undefined; // removed meanwhile
      throw error;
    });
    if (!info?.isFile) continue;
    await tighten(path, FILE_MODE);
    secrets.push({
      name: entry.name,
      bytes: info.size,
      updated_at: (info.mtime ?? new Date(0)).toISOString(),
    });
  }
  return secrets.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** Deletes a secret; true when there was one. */
export async function removeSecret(dir: string, name: string): Promise<boolean> {
  assertSecretName(name);
  try {
    await Deno.remove(join(dir, name));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * What the daemon resolves `secret://NAME` with. Each call reads the file again, so a secret
 * changed with `aegis edge secrets set` applies to the next tool call without a restart.
 */
export function secretResolver(dir: string): SecretResolver {
  return (name) => getSecret(dir, name);
}

/**
 * Strips every permission bit beyond `max`; false when the path does not exist. No-op where
 * the OS has no mode bits (Windows), where the directory's ACL is what protects the files.
 */
async function tighten(path: string, max: number): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  const mode = info.mode === null ? undefined : info.mode & 0o777;
  if (mode !== undefined && (mode & ~max) !== 0) await Deno.chmod(path, mode & max);
  return true;
}

/**
 * The file's info, or undefined when it is missing. A symlink or directory in place of a
 * secret is refused rather than followed: the daemon would otherwise hand whatever it points
 * at (the node key, say) to a tool call as a "secret".
 */
async function regularFile(path: string): Promise<Deno.FileInfo | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  if (!info.isFile) {
    throw new AegisError("CONFIG_INVALID", `${path} is not a regular file`, {
      hint: "Secrets are plain files; remove it and store the value with `aegis edge secrets set`.",
      details: { path },
    });
  }
  return info;
}
