// `deno task release:keygen --out DIR`: a release signing key pair in minisign's formats,
// DIR/release.key (0600, unencrypted, so builds sign unattended; `minisign -S -s` reads it too)
// and DIR/release.pub. The key is operator material: back it up, since losing it means every
// installed `aegis` must be reinstalled to trust a new one.
import { parseArgs } from "node:util";
import { join } from "node:path";
import { AegisError } from "../shared/errors.ts";
import { type Io, processIo, reportError } from "../shared/cli/io.ts";
import { ensureDir, exists, writeFileAtomic } from "../shared/fs/atomic.ts";
import { generateReleaseKey } from "../shared/release/minisign.ts";
import { PUBLIC_KEY_FILE } from "../shared/release/manifest.ts";

export const SECRET_KEY_FILE = "release.key";

export async function main(args: string[], io: Io): Promise<number> {
  try {
    const { values } = parseArgs({
      args,
      strict: true,
      options: { out: { type: "string" }, force: { type: "boolean", default: false } },
    });
    if (!values.out) throw new AegisError("INVALID_ARGUMENT", "pass --out DIR");
    const secretPath = join(values.out, SECRET_KEY_FILE);
    const publicPath = join(values.out, PUBLIC_KEY_FILE);
    if (!values.force && await exists(secretPath)) {
      throw new AegisError("CONFLICT", `${secretPath} already exists`, {
        hint:
          "Replacing a release key strands every host that trusts the old one; pass --force only if you mean that.",
      });
    }
    await ensureDir(values.out, 0o700);
    const key = generateReleaseKey();
    await writeFileAtomic(secretPath, key.secretKeyText, { mode: 0o600 });
    await writeFileAtomic(publicPath, key.publicKeyText, { mode: 0o644 });
    io.err(`release key ${key.keyId}: keep ${secretPath} secret and backed up\n`);
    io.err(`build with: deno task build --key ${secretPath} --version X.Y.Z\n`);
    io.out(`${publicPath}\n`);
    return 0;
  } catch (error) {
    if (error instanceof TypeError && "code" in error) {
      io.err(`✖ ${error.message}\nusage: deno task release:keygen --out DIR [--force]\n`);
      return 2;
    }
    return reportError(io, error);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args, processIo));
