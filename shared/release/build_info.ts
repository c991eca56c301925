// What this binary knows about its own build: its version and the release key it trusts for
// self-update. The key is compiled in (see ./embedded_build.ts), never fetched, so a
// compromised controller cannot hand a host its own key alongside its own signature (seed
// 004). A binary without a key refuses self-update instead of updating unverified.
import { AegisError } from "../errors.ts";
import { VERSION_PATTERN } from "./manifest.ts";
import { EMBEDDED_BUILD, type EmbeddedBuild } from "./embedded_build.ts";
import { keyIdHex, parsePublicKey, type ReleasePublicKey } from "./minisign.ts";

/** The version a source checkout reports; a release build compiles in its own. */
export const SOURCE_VERSION = "0.1.0";

export interface BuildInfo {
  version: string;
  /** "release" for a signed build, "unsigned" for an --unsigned one, "source" for `deno run`. */
  kind: "release" | "unsigned" | "source";
  /** The compiled-in release key's id (as minisign prints it), when there is one. */
  releaseKeyId?: string;
  builtAt?: string;
}

const embedded = checkEmbedded(EMBEDDED_BUILD);

export function buildInfo(): BuildInfo {
  if (!embedded) return { version: SOURCE_VERSION, kind: "source" };
  if (!embedded.key) {
    return { version: embedded.build.version, kind: "unsigned", builtAt: embedded.build.builtAt };
  }
  return {
    version: embedded.build.version,
    kind: "release",
    releaseKeyId: keyIdHex(embedded.key.keyId),
    builtAt: embedded.build.builtAt,
  };
}

/**
 * The key a release manifest must be signed with. Throws RELEASE_KEY_MISSING in a source run
 * or an --unsigned build: self-update is refused there (fail-closed).
 */
export function releaseVerificationKey(): ReleasePublicKey {
  if (embedded?.key) return embedded.key;
  const where = embedded ? "this build was made with --unsigned" : "this is a source run";
  throw new AegisError(
    "RELEASE_KEY_MISSING",
    `${where}: it has no release key compiled in, so self-update is refused (fail-closed)`,
  );
}

/** `aegis --version`: the version first (install.sh and tests read the first token). */
export function versionLine(info: BuildInfo = buildInfo()): string {
  switch (info.kind) {
    case "release":
      return `${info.version} (release key ${info.releaseKeyId})`;
    case "unsigned":
      return `${info.version} (unsigned build: no release key, self-update refused)`;
    case "source":
      return `${info.version} (source run: no release key, self-update refused)`;
  }
}

/**
 * A build that compiled in something malformed is broken, not merely unsigned: failing at
 * start-up says so at once instead of surfacing later as a refused update.
 */
function checkEmbedded(build: EmbeddedBuild | null) {
  if (build === null) return undefined;
  if (!VERSION_PATTERN.test(build.version)) {
    throw new AegisError("INTERNAL", `compiled-in version "${build.version}" is malformed`);
  }
  const key = build.releasePublicKey === null ? undefined : parsePublicKey(build.releasePublicKey);
  return { build, key };
}
