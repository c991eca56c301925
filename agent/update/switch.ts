// Points the service's path at an installed version. Both ways leave a complete binary at the
// path at every moment a service manager could start it (see layout.ts for why they differ).
import { join } from "node:path";
import { ensureDir, syncDir, writeFileAtomic } from "../../shared/fs/atomic.ts";
import { type UpdateLayout, versionBinary } from "./layout.ts";

export async function switchTo(layout: UpdateLayout, version: string): Promise<void> {
  // Refuse to point at nothing: a missing binary would only show at the next start.
  await Deno.stat(versionBinary(layout, version));
  if (layout.windows) await switchByRename(layout, version);
  else await switchSymlink(layout, version);
}

async function switchSymlink(layout: UpdateLayout, version: string): Promise<void> {
  const dir = join(layout.current, "..");
  const temp = join(dir, `.current.${crypto.randomUUID()}.tmp`);
  // Relative, so the state directory can be bound elsewhere (systemd's BindPaths=) and still work.
  await Deno.symlink(join("versions", version), temp);
  try {
    await Deno.rename(temp, layout.current);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  await syncDir(dir);
}

async function switchByRename(layout: UpdateLayout, version: string): Promise<void> {
  await ensureDir(layout.current, 0o700);
  const fresh = join(layout.current, `.${layout.binaryName}.new`);
  const aside = join(layout.current, `${layout.binaryName}.old`);
  await Deno.copyFile(versionBinary(layout, version), fresh);
  // The one that ran before may still be running from `aside` (the switch before this one).
  await Deno.remove(aside).catch(() => {});
  await Deno.rename(layout.bin, aside).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.rename(fresh, layout.bin);
  await writeFileAtomic(join(layout.current, "version"), `${version}\n`, { mode: 0o600 });
}
