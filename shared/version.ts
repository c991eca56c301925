// The version both binaries report: the release version a build compiled in, or, when run with
// `deno run`, the source checkout's SOURCE_VERSION (in ./release/build_info.ts, bumped with
// each release).
import { buildInfo, SOURCE_VERSION } from "./release/build_info.ts";

export { SOURCE_VERSION };
export const VERSION: string = buildInfo().version;
