// This host in the release manifest's words: which artifact is ours. Deno names the OS
// "darwin" and the ARM architecture "aarch64"; the manifest says "macos" and "arm64", as
// people and download pages do.
import type { ReleaseArch, ReleaseOs } from "../../shared/release/manifest.ts";
import { AegisError } from "../../shared/errors.ts";

export interface Platform {
  os: ReleaseOs;
  arch: ReleaseArch;
}

export function releasePlatform(
  build: { os: string; arch: string } = Deno.build,
): Platform {
  const os = build.os === "darwin" ? "macos" : build.os;
  const arch = build.arch === "aarch64" ? "arm64" : build.arch;
  if (
    (os !== "linux" && os !== "macos" && os !== "windows") ||
    (arch !== "x86_64" && arch !== "arm64")
  ) {
    throw new AegisError("NOT_FOUND", `no aegis release is built for ${build.os}/${build.arch}`);
  }
  return { os, arch };
}
