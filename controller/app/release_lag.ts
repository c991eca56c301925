// Which hosts run behind the release this controller serves, by the version each reported in
// its Hello (ordered by shared/version_order.ts).
import type { ReleaseCatalog } from "./releases.ts";
import { VERSION_PATTERN } from "../../shared/release/manifest.ts";
import { compareVersions } from "../../shared/version_order.ts";

/**
 * True when the host reported a version older than the served one; null when either is unknown
 * (no release served, or a version that is not a release version, e.g. an old daemon's).
 */
export function isBehind(
  agentVersion: string | undefined,
  served: string | undefined,
): boolean | null {
  if (!served || !agentVersion || !VERSION_PATTERN.test(agentVersion)) return null;
  return compareVersions(agentVersion, served) < 0;
}

/** The version `releases/latest` names, or undefined when this controller serves none. */
export async function servedVersion(
  catalog: ReleaseCatalog | undefined,
): Promise<string | undefined> {
  if (!catalog) return undefined;
  try {
    return (await catalog.current()).version;
  } catch {
    return undefined;
  }
}
