// What a release build compiles into a binary. A source checkout has nothing here (null); a
// release build (scripts/build.ts) writes a module of the same shape and points `deno compile`
// at it with an import map that remaps this file's URL, so the binary's imports stay static.
// Read it through ./build_info.ts.

export interface EmbeddedBuild {
  /** The release version the build was made for. */
  version: string;
  /** The release public key (minisign's base64 line), or null for an --unsigned build. */
  releasePublicKey: string | null;
  /** RFC 3339, when the build ran. */
  builtAt: string;
}

export const EMBEDDED_BUILD: EmbeddedBuild | null = null;
